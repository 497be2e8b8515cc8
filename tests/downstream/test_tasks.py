"""Examples to model inputs: labels on first pieces, sentences split into windows of whole
words and joined again, sentence pairs cut, labels checked, batches as run_classifier's."""

import random

import numpy as np
import pytest

from norbert.downstream import tasks
from norbert.downstream.conllu import Sentence
from norbert.errors import NorbertError
from norbert.tokenization.tokenizer import FullTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "##x", "##y", "long",
         "word", "."]


@pytest.fixture
def tokenizer():
    return FullTokenizer.from_vocab(VOCAB, check_casing=False)


def test_labels_on_first_pieces(tokenizer):
    sentence = Sentence(("a", "bx", "\x00", "c"), ("D", "N", "X", "D"), 1)
    inputs = tasks.token_inputs([sentence], tokenizer, ["D", "N", "X"], 16)
    ids = inputs.arrays["input_ids"][0]
    # [CLS] a b ##x [UNK] c [SEP]: the control-character word becomes one [UNK].
    assert list(ids[:8]) == [2, 5, 6, 8, 1, 7, 3, 0]
    assert list(inputs.arrays["input_mask"][0][:8]) == [1] * 7 + [0]
    assert list(inputs.arrays["label_weights"][0][:7]) == [0, 1, 1, 0, 1, 1, 0]
    assert list(inputs.arrays["label_ids"][0][:7]) == [0, 0, 1, 0, 2, 0, 0]
    assert inputs.arrays["input_ids"].shape == (1, 16)


def test_windows_hold_whole_words():
    pieces = [[1], [1, 1, 1], [1, 1], [1, 1, 1, 1, 1, 1, 1], [1]]
    assert tasks.windows(pieces, 4) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert tasks.windows(pieces, 6) == [(0, 3), (3, 4), (4, 5)]
    assert tasks.windows([], 4) == []


def test_long_sentences_split_and_joined_back(tokenizer):
    rng = random.Random(0)
    words = ["a", "bx", "cyy", "word", "long", "."]
    labels = ["L%d" % i for i in range(4)]
    sentences = [Sentence(tuple(rng.choice(words) for _ in range(rng.randint(1, 30))),
                          (), 1) for _ in range(20)]
    sentences = [Sentence(s.words, tuple(rng.choice(labels) for _ in s.words), 1)
                 for s in sentences]
    inputs = tasks.token_inputs(sentences, tokenizer, labels, 8)
    assert len(inputs.arrays["input_ids"]) > len(sentences)  # some were split
    assert (inputs.arrays["input_mask"].sum(axis=1) <= 8).all()
    # Predicting the gold ids gives back every word's label, in order: no word dropped.
    joined = tasks.sentence_predictions(inputs, inputs.arrays["label_ids"], labels,
                                        len(sentences))
    assert joined == [list(s.labels) for s in sentences]
    assert int(inputs.arrays["label_weights"].sum()) == sum(len(s.words) for s in sentences)


def test_a_word_longer_than_a_window_keeps_its_label(tokenizer):
    sentence = Sentence(("a", "bxyxyxyxy", "c"), ("A", "B", "C"), 1)
    inputs = tasks.token_inputs([sentence], tokenizer, ["A", "B", "C"], 5)
    joined = tasks.sentence_predictions(inputs, inputs.arrays["label_ids"], ["A", "B", "C"], 1)
    assert joined == [["A", "B", "C"]]


def test_eval_labels_unseen_in_training():
    tasks.check_eval_labels(["a", "b"], ["a", "b", "c"], "dev.conllu")
    with pytest.raises(NorbertError) as error:
        tasks.check_eval_labels(["a", "x", "x", "y"], ["a"], "dev.conllu")
    message = str(error.value)
    assert message.startswith("--eval_file=dev.conllu: the label 'x' (2 times) never occurs in "
                              "--train_file (and 1 more unseen labels: x, y)")


def test_jsonl_and_tsv_examples(tmp_path, tokenizer):
    (tmp_path / "a.jsonl").write_text('{"text": "a b", "label": "pos"}\n\n'
                                      '{"text": "c", "hyp": "a", "label": 1}\n')
    (tmp_path / "a.tsv").write_text("label\ttext\thyp\npos\ta b\tc\n")
    examples = tasks.read_text_examples(str(tmp_path / "a.jsonl"), "text", None, "label", "-")
    assert examples == [tasks.TextExample("a b", None, "pos"), tasks.TextExample("c", None, "1")]
    pairs = tasks.read_text_examples(str(tmp_path / "a.tsv"), "text", "hyp", "label", "-")
    assert pairs == [tasks.TextExample("a b", "c", "pos")]
    arrays = tasks.sequence_inputs(pairs, tokenizer, ["neg", "pos"], 8)
    assert list(arrays["input_ids"][0][:6]) == [2, 5, 6, 3, 7, 3]
    assert list(arrays["segment_ids"][0][:7]) == [0, 0, 0, 0, 1, 1, 0]
    assert list(arrays["label_ids"]) == [1]


def test_pairs_cut_the_longer_text_first(tokenizer):
    pair = tasks.TextExample("a a a a a a", "b b", "x")
    arrays = tasks.sequence_inputs([pair], tokenizer, ["x"], 8)  # 5 pieces of room
    assert list(arrays["input_ids"][0]) == [2, 5, 5, 5, 3, 6, 6, 3]


@pytest.mark.parametrize("content, message", [
    ('{"text": "a"}\n', "a.jsonl:1: no field 'label'"),
    ('["a", "b"]\n', "a.jsonl:1: not a JSON object"),
    ("\n", "holds no example"),
])
def test_bad_text_files(tmp_path, content, message):
    (tmp_path / "a.jsonl").write_text(content)
    with pytest.raises(NorbertError, match=message):
        tasks.read_text_examples(str(tmp_path / "a.jsonl"), "text", None, "label", "--x")


def test_batches_as_run_classifier_draws_them():
    assert tasks.train_steps(100, 3.0, 32) == 9
    assert tasks.train_steps(3, 1.0, 32) == 1
    order = tasks.batch_order(10, 7, 3, random.Random(1))
    assert len(order) == 7 and all(len(b) == 3 for b in order)
    flat = [i for b in order for i in b]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))
    assert order == tasks.batch_order(10, 7, 3, random.Random(1))
    assert order != tasks.batch_order(10, 7, 3, random.Random(2))
    arrays = {"x": np.arange(10)}
    assert list(tasks.select(arrays, [3, 1])["x"]) == [3, 1]


def test_batches_trimmed_to_their_longest_row(tokenizer):
    sentences = [Sentence(("a", "b"), ("A", "B"), 1),
                 Sentence(("a", "bx", "c"), ("A", "B", "A"), 1)]
    arrays = tasks.token_inputs(sentences, tokenizer, ["A", "B"], 16).arrays
    short = tasks.trimmed(tasks.select(arrays, [0]))
    assert {k: v.shape for k, v in short.items()} == {k: (1, 4) for k in arrays}  # [CLS] a b [SEP]
    both = tasks.trimmed(arrays)
    assert both["input_ids"].shape == (2, 6)
    np.testing.assert_array_equal(both["label_weights"], arrays["label_weights"][:, :6])
    assert not arrays["input_mask"][:, 6:].any()  # only padding was cut
    labels = {"input_ids": arrays["input_ids"], "input_mask": arrays["input_mask"],
              "label_ids": np.array([1, 0])}
    assert tasks.trimmed(labels)["label_ids"].shape == (2,)  # a label per row stays whole
