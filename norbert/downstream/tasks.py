"""Labelled examples to model inputs: the two tasks, their labels, and the training batches.

Token classification (CoNLL-U, ``norbert.downstream.conllu``): each word is split into
WordPiece pieces; its label sits on its first piece, and the other pieces carry weight 0, so
the loss and the scores see each word once. A sentence longer than ``max_seq_length`` (with
[CLS] and [SEP]) is split into windows of whole words, in order, and the windows' predictions
are joined again: no word is ever dropped. A word with more pieces than a window holds keeps
its first pieces (its label is on the first). A word the tokenizer turns into nothing (a form
of control characters) is one [UNK], so that it still has a label position.

Sequence classification (JSONL, or TSV with a header line): a text, or a pair of texts, and one
label; the label sits on [CLS]. A pair too long is cut as Google's run_classifier.py cuts it
(the longer text loses its last piece first).

Inputs are numpy arrays: ``input_ids``, ``input_mask``, ``segment_ids`` [N, S], and
``label_ids`` and ``label_weights`` [N, S] (tokens) or [N] (sequences). Training batches are
drawn as run_classifier.py draws them: the examples shuffled afresh each pass, passes joined,
``int(N * epochs / batch)`` full batches. No TensorFlow.
"""

import collections
import csv
import dataclasses
import io
import json
import random
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from norbert import fileio
from norbert.downstream.conllu import Sentence
from norbert.errors import NorbertError

Arrays = Dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class TextExample:
    """One labelled text (or pair) of a sequence classification file."""

    text: str
    text_b: Optional[str]
    label: str


@dataclasses.dataclass(frozen=True)
class TokenInputs:
    """A token task's inputs: the arrays, and for each row (window) the sentence it came from
    and how many of that sentence's words it labels, so that predictions join back."""

    arrays: Arrays
    sentence_of_row: Tuple[int, ...]
    words_in_row: Tuple[int, ...]


# ---- labels -----------------------------------------------------------------------------


def label_list(labels: Sequence[str]) -> List[str]:
    """The labels seen in training, sorted: label id = position."""
    return sorted(set(labels))


def check_eval_labels(labels: Sequence[str], known: Sequence[str], path: str) -> None:
    """A ``NorbertError`` naming the first of the evaluation labels (by count) that training
    never saw: the model could not predict it, and the score would quietly mean less."""
    unseen = collections.Counter(label for label in labels if label not in set(known))
    if unseen:
        label, count = unseen.most_common(1)[0]
        others = (" (and %d more unseen labels: %s)" % (len(unseen) - 1, ", ".join(
            sorted(unseen)[:5])) if len(unseen) > 1 else "")
        raise NorbertError(
            "--eval_file=%s: the label %r (%d times) never occurs in --train_file%s: train on "
            "data that has it, or map it to a known label" % (path, label, count, others))


# ---- token classification ---------------------------------------------------------------


def word_pieces(words: Sequence[str], tokenizer) -> List[List[int]]:
    """Each word's piece ids (an empty one becomes [UNK])."""
    unk = tokenizer.convert_tokens_to_ids(["[UNK]"])[0]
    out = []
    for word in words:
        ids = tokenizer.encode(word)
        out.append(ids if ids else [unk])
    return out


def windows(pieces: Sequence[Sequence[int]], room: int) -> List[Tuple[int, int]]:
    """(first word, end word) of each window: whole words, in order, at most ``room`` pieces
    each (a word longer than ``room`` alone in its window, to be cut there)."""
    out, start, used = [], 0, 0
    for index, word in enumerate(pieces):
        size = min(len(word), room)
        if used + size > room and index > start:
            out.append((start, index))
            start, used = index, 0
        used += size
    if pieces:
        out.append((start, len(pieces)))
    return out


def token_inputs(sentences: Sequence[Sentence], tokenizer, labels: Sequence[str],
                 max_seq_length: int) -> TokenInputs:
    """The rows of a token task: one per window of each sentence, the label on each word's
    first piece (weight 1), every other position weight 0."""
    label_id = {label: i for i, label in enumerate(labels)}
    cls_id, sep_id = tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]"])
    rows: List[Tuple[List[int], List[int], List[int]]] = []  # (ids, label ids, weights)
    sentence_of_row, words_in_row = [], []
    for number, sentence in enumerate(sentences):
        pieces = word_pieces(sentence.words, tokenizer)
        for start, end in windows(pieces, max_seq_length - 2):
            ids, label_ids, weights = [cls_id], [0], [0]
            for word, label in zip(pieces[start:end], sentence.labels[start:end]):
                word = word[:max_seq_length - 2]
                ids += word
                label_ids += [label_id.get(label, 0)] + [0] * (len(word) - 1)
                weights += [1] + [0] * (len(word) - 1)
            rows.append((ids + [sep_id], label_ids + [0], weights + [0]))
            sentence_of_row.append(number)
            words_in_row.append(end - start)
    arrays = _padded([r[0] for r in rows], max_seq_length)
    arrays["label_ids"] = _pad([r[1] for r in rows], max_seq_length)
    arrays["label_weights"] = _pad([r[2] for r in rows], max_seq_length).astype(np.float32)
    return TokenInputs(arrays, tuple(sentence_of_row), tuple(words_in_row))


def sentence_predictions(inputs: TokenInputs, predicted: np.ndarray, labels: Sequence[str],
                         sentences: int) -> List[List[str]]:
    """Each sentence's predicted labels, from per-position predictions [N, S] of the rows:
    the labels at the weighted positions, windows joined in order."""
    out: List[List[str]] = [[] for _ in range(sentences)]
    weights = inputs.arrays["label_weights"]
    for row, sentence in enumerate(inputs.sentence_of_row):
        chosen = predicted[row][weights[row] > 0]
        out[sentence].extend(labels[int(i)] for i in chosen[:inputs.words_in_row[row]])
    return out


# ---- sequence classification ------------------------------------------------------------


def _field(record: Mapping, name: str, path: str, line: int, optional: bool = False):
    value = record.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or value == "":
        raise NorbertError("%s:%d: no field %r with a text or label (fields there: %s): name "
                           "the right one with --text_field / --text_b_field / --label_field"
                           % (path, line, name, ", ".join(map(str, record)) or "none"))
    return str(value)


def _records(path: str) -> List[Tuple[int, Mapping]]:
    """(line number, record) of a JSONL file, or of a TSV file with a header line."""
    text = fileio.read_bytes(path, what="data file").decode("utf-8", "replace")
    if path.endswith((".tsv", ".tsv.gz", ".txt")):
        rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
        if not rows:
            return []
        header = rows[0]
        return [(n, dict(zip(header, row))) for n, row in enumerate(rows[1:], 2) if row]
    out = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise NorbertError("%s:%d: not a JSON object: give one object a line (JSONL), or "
                               "a .tsv file with a header line" % (path, number))
        out.append((number, record))
    return out


def read_text_examples(path: str, text_field: str, text_b_field: Optional[str],
                       label_field: str, flag: str) -> List[TextExample]:
    """The labelled texts of a JSONL or TSV file (``flag`` gave it)."""
    examples = [TextExample(_field(r, text_field, path, n),
                            _field(r, text_b_field, path, n, optional=True)
                            if text_b_field else None,
                            _field(r, label_field, path, n))
                for n, r in _records(path)]
    if not examples:
        raise NorbertError("%s=%s holds no example: give labelled texts, one JSON object a "
                           "line or a TSV file with a header line" % (flag, path))
    return examples


def _cut_pair(a: List[int], b: List[int], room: int) -> None:
    while len(a) + len(b) > room:
        (a if len(a) >= len(b) else b).pop()


def sequence_inputs(examples: Sequence[TextExample], tokenizer, labels: Sequence[str],
                    max_seq_length: int) -> Arrays:
    """The rows of a sentence task: [CLS] a [SEP] (b [SEP]), the label on [CLS]."""
    label_id = {label: i for i, label in enumerate(labels)}
    cls_id, sep_id = tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]"])
    rows, types = [], []
    for example in examples:
        a = tokenizer.encode(example.text)
        b = tokenizer.encode(example.text_b) if example.text_b is not None else None
        if b is None:
            a = a[:max_seq_length - 2]
            rows.append([cls_id] + a + [sep_id])
            types.append([0] * (len(a) + 2))
        else:
            _cut_pair(a, b, max_seq_length - 3)
            rows.append([cls_id] + a + [sep_id] + b + [sep_id])
            types.append([0] * (len(a) + 2) + [1] * (len(b) + 1))
    arrays = _padded(rows, max_seq_length)
    arrays["segment_ids"] = _pad(types, max_seq_length)
    arrays["label_ids"] = np.array([label_id.get(e.label, 0) for e in examples], np.int32)
    arrays["label_weights"] = np.ones([len(examples)], np.float32)
    return arrays


# ---- arrays and batches -----------------------------------------------------------------


def _pad(rows: Sequence[Sequence[int]], length: int) -> np.ndarray:
    out = np.zeros([len(rows), length], np.int32)  # [N, S]
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def _padded(rows: Sequence[Sequence[int]], length: int) -> Arrays:
    ids = _pad(rows, length)
    mask = _pad([[1] * len(r) for r in rows], length)
    return {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids)}


def train_steps(examples: int, epochs: float, batch_size: int) -> int:
    """Updates in a fine-tuning run, as run_classifier.py counts them (at least one)."""
    return max(1, int(examples * epochs / batch_size))


def batch_order(examples: int, steps: int, batch_size: int, rng: random.Random
                ) -> List[List[int]]:
    """The example indices of each of ``steps`` batches: passes over the examples, each
    shuffled by ``rng``, joined and cut into full batches."""
    needed = steps * batch_size
    order: List[int] = []
    while len(order) < needed:
        one_pass = list(range(examples))
        rng.shuffle(one_pass)
        order.extend(one_pass)
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


def select(arrays: Arrays, indices: Sequence[int]) -> Arrays:
    """The rows ``indices`` of every array."""
    return {name: value[np.asarray(indices, np.int64)] for name, value in arrays.items()}


def trimmed(arrays: Arrays) -> Arrays:
    """A batch cut to its longest row: every [N, S] array's columns beyond the last real token
    of any row dropped (padding only, which the mask hides: the outputs are the same, and a
    batch of short sentences costs what they need, not max_seq_length)."""
    length = max(1, int(arrays["input_mask"].sum(axis=1).max())) if len(
        arrays["input_mask"]) else 1
    width = arrays["input_ids"].shape[1]
    return {name: value[:, :length] if value.ndim == 2 and value.shape[1] == width else value
            for name, value in arrays.items()}
