"""The scores of a downstream task: accuracy, strict entity F1 for BIO labels, macro F1.

Pure functions of label sequences (strings), no TensorFlow.

Entity F1 is strict, as CoNLL's ``conlleval`` and seqeval's strict mode count: an entity is a
(type, start, end) span that begins with ``B-type`` (or ``I-type`` after something else, which
``conlleval`` also starts a span on) and goes on over ``I-type``; a predicted entity counts when
its type and both ends equal a gold one's.
"""

from typing import Dict, List, Sequence, Set, Tuple

Span = Tuple[str, int, int]  # (type, first word, last word + 1)


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """The share of positions where ``predicted`` equals ``gold`` (0.0 for none)."""
    if len(gold) != len(predicted):
        raise ValueError("accuracy of %d predictions against %d labels"
                         % (len(predicted), len(gold)))
    return sum(g == p for g, p in zip(gold, predicted)) / len(gold) if gold else 0.0


def is_bio(labels: Sequence[str]) -> bool:
    """True when every label is ``O``, ``B-x`` or ``I-x`` (the IOB2 scheme) and some are not
    ``O``: then the labels are entity tags and entity F1 means something."""
    seen_entity = False
    for label in set(labels):
        if label == "O":
            continue
        if len(label) < 3 or label[:2] not in ("B-", "I-"):
            return False
        seen_entity = True
    return seen_entity


def entities(labels: Sequence[str]) -> Set[Span]:
    """The entity spans of one sentence's BIO labels."""
    spans: Set[Span] = set()
    kind, start = None, 0
    for index, label in enumerate(list(labels) + ["O"]):
        prefix, name = label[:2], label[2:]
        continues = prefix == "I-" and name == kind
        if kind is not None and not continues:
            spans.add((kind, start, index))
            kind = None
        if prefix == "B-" or (prefix == "I-" and not continues):
            kind, start = name, index
    return spans


def entity_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    """Strict entity F1 over sentences (each a label sequence); 0.0 when neither side has an
    entity, or when no predicted entity is right."""
    right = found = wanted = 0
    for gold_labels, predicted_labels in zip(gold, predicted):
        gold_spans, predicted_spans = entities(gold_labels), entities(predicted_labels)
        right += len(gold_spans & predicted_spans)
        found += len(predicted_spans)
        wanted += len(gold_spans)
    if not right:
        return 0.0
    precision, recall = right / found, right / wanted
    return 2 * precision * recall / (precision + recall)


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """The mean of each label's F1 over the labels of ``gold`` and ``predicted`` (as
    scikit-learn's ``f1_score(average="macro")``: a label never predicted right scores 0)."""
    labels = sorted(set(gold) | set(predicted))
    if not labels:
        return 0.0
    scores: List[float] = []
    for label in labels:
        true_pos = sum(g == label and p == label for g, p in zip(gold, predicted))
        predicted_count = sum(p == label for p in predicted)
        gold_count = sum(g == label for g in gold)
        scores.append(2.0 * true_pos / (predicted_count + gold_count) if true_pos else 0.0)
    return sum(scores) / len(scores)


def token_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
                 bio: bool) -> Dict[str, float]:
    """A token task's scores: ``accuracy`` over all words, and ``entity_f1`` when ``bio``."""
    flat_gold = [label for sentence in gold for label in sentence]
    flat_predicted = [label for sentence in predicted for label in sentence]
    scores = {"accuracy": accuracy(flat_gold, flat_predicted)}
    if bio:
        scores["entity_f1"] = entity_f1(gold, predicted)
    return scores


def sequence_scores(gold: Sequence[str], predicted: Sequence[str]) -> Dict[str, float]:
    """A sentence task's scores: ``accuracy`` and ``macro_f1``."""
    return {"accuracy": accuracy(gold, predicted), "macro_f1": macro_f1(gold, predicted)}
