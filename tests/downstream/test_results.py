"""The results: mean and spread, the files (written whole), TensorBoard events, JSONL lines."""

import json
import os

import pytest

from norbert.downstream import results
from norbert.downstream.results import DownstreamResults, Run


def _results():
    runs = (Run(1, {"accuracy": 0.9}, 10, 1.0), Run(2, {"accuracy": 0.8}, 10, 1.5),
            Run(3, {"accuracy": 0.7}, 10, 2.0))
    return DownstreamResults("ud", "run/model.ckpt-5", False, runs, {"learning_rate": 1e-4})


def test_mean_and_std():
    assert results.mean_and_std([1.0]) == (1.0, 0.0)
    mean, std = results.mean_and_std([0.9, 0.8, 0.7])
    assert mean == pytest.approx(0.8) and std == pytest.approx(0.1)


def test_files(tmp_path):
    path = results.write_results(_results(), str(tmp_path / "out"))
    data = json.loads(open(path).read())
    assert data["metrics"]["accuracy"]["mean"] == pytest.approx(0.8)
    assert data["metrics"]["accuracy"]["std"] == pytest.approx(0.1)
    assert data["metrics"]["accuracy"]["runs"] == [0.9, 0.8, 0.7]
    assert data["runs"][1] == {"seed": 2, "accuracy": 0.8, "steps": 10, "seconds": 1.5}
    assert data["settings"] == {"learning_rate": 1e-4} and data["baseline"] is False
    lines = (tmp_path / "out" / results.RUNS_NAME).read_text().splitlines()
    assert lines[0] == "seed 1: accuracy 0.9000 (10 updates, 1.0 s)" and len(lines) == 3
    assert sorted(os.listdir(str(tmp_path / "out"))) == [results.RESULTS_NAME, results.RUNS_NAME]
    assert "accuracy 0.8000 +- 0.1000 (3 seeds)" in _results().summary()


def test_events_tensorboard_reads(tmp_path):
    tf = pytest.importorskip("tensorflow").compat.v1
    results.write_events(str(tmp_path), _results(), 40)
    (events,) = tf.io.gfile.glob(str(tmp_path / "events.out.tfevents.*"))
    found = {(v.tag, e.step): v.simple_value for e in tf.train.summary_iterator(events)
             for v in e.summary.value}
    assert found[("downstream/ud/accuracy", 40)] == pytest.approx(0.8)
    assert found[("downstream/ud/accuracy/seed_3", 40)] == pytest.approx(0.7)


def test_curves_tensorboard_reads(tmp_path):
    tf = pytest.importorskip("tensorflow").compat.v1
    runs = (Run(1, {"accuracy": 0.9}, 4, 1.0, {2: 1.5, 4: 0.5}, {2: 1e-4, 4: 5e-5}),
            Run(2, {"accuracy": 0.8}, 4, 1.0, {2: 1.25, 4: 0.75}, {2: 1e-4, 4: 5e-5}))
    results.write_events(str(tmp_path), _results(), 0)
    results.write_curves(str(tmp_path), DownstreamResults("ud", "m", False, runs, {}))
    found = {}
    for path in tf.io.gfile.glob(str(tmp_path / "events.out.tfevents.*")):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                found[(value.tag, event.step)] = value.simple_value
    assert found[("downstream/ud/accuracy", 0)] == pytest.approx(0.8)  # not overwritten
    curves = {k: v for k, v in found.items() if "/finetune/" in k[0]}
    assert curves == {
        ("downstream/ud/finetune/seed_1/loss", 2): 1.5,
        ("downstream/ud/finetune/seed_1/loss", 4): 0.5,
        ("downstream/ud/finetune/seed_2/loss", 2): 1.25,
        ("downstream/ud/finetune/seed_2/loss", 4): 0.75,
        ("downstream/ud/finetune/seed_1/learning_rate", 2): pytest.approx(1e-4),
        ("downstream/ud/finetune/seed_1/learning_rate", 4): pytest.approx(5e-5),
        ("downstream/ud/finetune/seed_2/learning_rate", 2): pytest.approx(1e-4),
        ("downstream/ud/finetune/seed_2/learning_rate", 4): pytest.approx(5e-5)}


def test_no_curve_no_file(tmp_path):
    results.write_curves(str(tmp_path / "none"), _results())  # runs without a curve
    assert not (tmp_path / "none").exists()


def test_jsonl(tmp_path):
    path = str(tmp_path / "a.jsonl")
    assert results.read_jsonl(path) == []
    results.append_jsonl(path, {"step": 1})
    results.append_jsonl(path, {"step": 2})
    with open(path, "a") as f:
        f.write('{"step": 3, "cut')  # a line cut short is left out
    assert results.read_jsonl(path) == [{"step": 1}, {"step": 2}]
