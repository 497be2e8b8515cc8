"""evaluate_downstream end to end: the runs per seed, the files, the baseline, the checks that
come before any fine-tuning."""

import json
import logging
import os

import pytest

from tagged_text import english_sentences
from norbert.downstream import evaluate
from norbert.downstream.results import RESULTS_NAME, RUNS_NAME
from norbert.errors import NorbertError

FAST = dict(learning_rate=1e-3, num_train_epochs=0.5, train_batch_size=16, max_seq_length=32,
            log_every=1)


def _files(tagged, **changes):
    root, vocab = tagged
    settings = dict(train_file=str(root / "train.conllu"), eval_file=str(root / "eval.conllu"),
                    bert_config_file=str(root / "bert_config.json"), vocab_file=vocab)
    settings.update(FAST)
    settings.update(changes)
    return settings


def test_token_task_from_a_checkpoint_folder(tagged, tiny_checkpoint, tmp_path, caplog):
    pytest.importorskip("tensorflow")
    folder, prefix = tiny_checkpoint
    caplog.set_level(logging.INFO)
    results = evaluate.evaluate_downstream(**_files(
        tagged, checkpoint=str(folder), output_dir=str(tmp_path / "out"), num_seeds=2, seed=4,
        name="ud"))
    assert results.model == prefix and not results.baseline
    data = json.loads((tmp_path / "out" / RESULTS_NAME).read_text())
    accuracy = data["metrics"]["accuracy"]
    assert [r["seed"] for r in data["runs"]] == [4, 5] and len(accuracy["runs"]) == 2
    assert accuracy["mean"] == pytest.approx(sum(accuracy["runs"]) / 2)
    assert data["settings"]["learning_rate"] == 1e-3 and data["settings"]["seeds"] == [4, 5]
    assert data["settings"]["labels"] == ["ADP", "CCONJ", "DET", "PRON", "PUNCT", "X"]
    assert "entity_f1" not in data["metrics"]  # UPOS is not BIO
    assert len((tmp_path / "out" / RUNS_NAME).read_text().splitlines()) == 2
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(str(tmp_path / "out")))
    # Each run's fine-tuning curve, read back from the events: a loss and a learning rate per
    # update (log_every=1), the learning rate decaying linearly to 0 after the warm-up.
    curves = _curves(tmp_path / "out")
    for run in results.runs:
        loss = curves["downstream/ud/finetune/seed_%d/loss" % run.seed]
        rate = curves["downstream/ud/finetune/seed_%d/learning_rate" % run.seed]
        assert sorted(loss) == sorted(rate) == list(range(1, run.steps + 1))
        assert loss == pytest.approx(dict(run.losses)) and all(v > 0 for v in loss.values())
        steps = run.steps
        warmup = int(steps * 0.1)
        for update, value in rate.items():  # the rate of update u is read at global step u - 1
            expected = 1e-3 * (1 - (update - 1) / steps)
            if update - 1 < warmup:
                expected = 1e-3 * (update - 1) / warmup
            assert value == pytest.approx(expected, rel=1e-4, abs=1e-9), (update, value)
    messages = [r.getMessage() for r in caplog.records]
    start = [m for m in messages if m.startswith("fine-tuning ")][0]
    assert "learning_rate=0.001" in start and "num_train_epochs=0.5" in start
    assert start.endswith("seeds 4, 5")


def _curves(folder):
    """tag -> {step: value} of every scalar in ``folder``'s events."""
    import tensorflow.compat.v1 as tf

    found = {}
    for path in tf.io.gfile.glob(str(folder / "events.out.tfevents.*")):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, {})[event.step] = value.simple_value
    return found


def test_sentence_task_from_random_weights(tagged, tmp_path, caplog):
    pytest.importorskip("tensorflow")
    lines = [" ".join(words) for words in english_sentences()[:60]]
    for name, part in (("train.jsonl", lines[:40]), ("dev.jsonl", lines[40:])):
        (tmp_path / name).write_text("".join(json.dumps(
            {"text": t, "label": "long" if len(t) > 60 else "short"}) + "\n" for t in part))
    caplog.set_level(logging.INFO)
    results = evaluate.evaluate_downstream(**_files(
        tagged, task="sequence_classification", train_file=str(tmp_path / "train.jsonl"),
        eval_file=str(tmp_path / "dev.jsonl"), output_dir=str(tmp_path / "out"), num_seeds=1))
    assert results.baseline and results.model == evaluate.BASELINE
    assert set(results.metrics()) == {"accuracy", "macro_f1"}
    assert any("random weights (a baseline)" in r.getMessage() for r in caplog.records)
    assert json.loads((tmp_path / "out" / RESULTS_NAME).read_text())["baseline"] is True


def test_entity_f1_for_bio_labels(tagged, tmp_path):
    from tagged_text import conllu_text

    def misc(i, word):
        return "name=%s" % ("B-CAP" if word[:1].isupper() else "O")

    sentences = english_sentences()
    (tmp_path / "train.conllu").write_text(conllu_text(sentences[:20], misc))
    (tmp_path / "dev.conllu").write_text(conllu_text(sentences[20:30], misc))
    from norbert.downstream.config import DownstreamConfig, FinetuneConfig
    from norbert.model.bert_config import BertConfig
    from norbert.tokenization.options import TokenizerOptions

    root, vocab = tagged
    config = DownstreamConfig(str(tmp_path / "train.conllu"), str(tmp_path / "dev.conllu"),
                              str(root / "bert_config.json"), vocab, label_column="MISC:name")
    task = evaluate.prepare_task(config, FinetuneConfig(max_seq_length=32), TokenizerOptions(),
                                 BertConfig.from_json_file(config.bert_config_file))
    assert task.bio and task.labels == ("B-CAP", "O")
    gold_ids = task.evaluation["label_ids"]
    assert task.score(gold_ids) == {"accuracy": 1.0, "entity_f1": 1.0}


@pytest.mark.parametrize("changes, message", [
    (dict(output_dir=None), "output_dir= is required"),
    (dict(output_dir="x", checkpoint="c", watch="w"), "checkpoint= and watch= both name"),
    (dict(output_dir="x", distribution="multi_worker"), "distribution=multi_worker is not "
                                                        "supported .* use distribution=mirrored"),
    (dict(output_dir="x", max_seq_length=128), "max_seq_length=128 is longer than the model's "
                                               "max_position_embeddings \\(64\\)"),
])
def test_settings_checked_first(tagged, changes, message):
    with pytest.raises(NorbertError, match=message):
        evaluate.evaluate_downstream(**_files(tagged, **changes))


def test_unseen_eval_label(tagged, tmp_path):
    root, _ = tagged
    text = (root / "eval.conllu").read_text().replace("\tDET\t", "\tDETX\t")
    (tmp_path / "dev.conllu").write_text(text)
    with pytest.raises(NorbertError) as error:
        evaluate.evaluate_downstream(**_files(tagged, eval_file=str(tmp_path / "dev.conllu"),
                                              output_dir=str(tmp_path / "out")))
    assert "the label 'DETX' (" in str(error.value) and "never occurs in train_file" in str(
        error.value)
    assert not (tmp_path / "out").exists()
