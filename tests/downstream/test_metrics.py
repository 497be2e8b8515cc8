"""Accuracy, strict BIO entity F1 and macro F1, against hand counts and scikit-learn."""

import random

import pytest

from norbert.downstream import metrics


def test_accuracy():
    assert metrics.accuracy(["a", "b", "c", "d"], ["a", "b", "x", "d"]) == 0.75
    assert metrics.accuracy([], []) == 0.0
    with pytest.raises(ValueError):
        metrics.accuracy(["a"], [])


@pytest.mark.parametrize("labels, bio", [
    (["O", "B-PER", "I-PER"], True), (["O", "O"], False), (["NOUN", "VERB"], False),
    (["O", "B-PER", "X"], False), (["B-", "O"], False),
])
def test_is_bio(labels, bio):
    assert metrics.is_bio(labels) is bio


def test_entities():
    labels = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG", "I-ORG", "I-LOC"]
    assert metrics.entities(labels) == {("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5),
                                        ("ORG", 5, 7), ("LOC", 7, 8)}


def test_entity_f1_is_strict():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    # One exact match (LOC); PER cut short and ORG mistyped do not count.
    predicted = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "O"]]
    precision, recall = 1 / 3, 1 / 3
    assert metrics.entity_f1(gold, predicted) == pytest.approx(
        2 * precision * recall / (precision + recall))
    assert metrics.entity_f1(gold, gold) == 1.0
    assert metrics.entity_f1([["O"]], [["O"]]) == 0.0


def test_macro_f1_as_scikit_learn():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = random.Random(0)
    gold = [rng.choice("abcd") for _ in range(200)]
    predicted = [g if rng.random() < 0.6 else rng.choice("abce") for g in gold]
    assert metrics.macro_f1(gold, predicted) == pytest.approx(
        sklearn.f1_score(gold, predicted, average="macro"))


def test_macro_f1_by_hand():
    # a: tp 1, 2 predicted, 1 gold -> 2/3; b: tp 0 -> 0.
    assert metrics.macro_f1(["a", "b"], ["a", "a"]) == pytest.approx((2 / 3 + 0) / 2)


def test_scores_per_task():
    assert metrics.token_scores([["B-A", "O"]], [["B-A", "B-A"]], bio=True) == {
        "accuracy": 0.5, "entity_f1": pytest.approx(2 / 3)}
    assert set(metrics.token_scores([["X"]], [["X"]], bio=False)) == {"accuracy"}
    assert metrics.sequence_scores(["p", "n"], ["p", "p"])["accuracy"] == 0.5
