"""The downstream configs check themselves, naming the flag."""

import dataclasses

import pytest

from norbert.downstream.config import DownstreamConfig, FinetuneConfig, WatchConfig
from norbert.errors import NorbertError

FILES = dict(train_file="ud/train.conllu", eval_file="ud/dev.conllu",
             bert_config_file="c.json", vocab_file="vocab.txt")


@pytest.mark.parametrize("cls, changes, message", [
    (DownstreamConfig, dict(FILES, train_file=""), "--train_file is required"),
    (DownstreamConfig, dict(FILES, task="ner"), "--task=ner is not known"),
    (DownstreamConfig, dict(FILES, label_column="POS"), "--label_column=POS is not a label"),
    (DownstreamConfig, dict(FILES, label_field=""), "--label_field must name a field"),
    (DownstreamConfig, dict(FILES, name="a/b"), "--name=a/b: use letters"),
    (FinetuneConfig, dict(learning_rate=0), "--learning_rate must be positive"),
    (FinetuneConfig, dict(num_train_epochs=0), "--num_train_epochs must be positive"),
    (FinetuneConfig, dict(train_batch_size=0), "--train_batch_size=0 must be at least 1"),
    (FinetuneConfig, dict(num_seeds=0), "--num_seeds=0 must be at least 1"),
    (FinetuneConfig, dict(max_seq_length=2), "--max_seq_length=2 must be at least 3"),
    (FinetuneConfig, dict(warmup_proportion=1.0), "--warmup_proportion=1 must be in"),
    (WatchConfig, dict(watch_poll_secs=0), "--watch_poll_secs must be positive"),
    (WatchConfig, dict(watch_timeout_secs=-1), "--watch_timeout_secs must be 0"),
    (WatchConfig, dict(watch_final_step=-1), "--watch_final_step must be 0"),
])
def test_bad_settings(cls, changes, message):
    with pytest.raises(NorbertError, match=message):
        cls(**changes)


def test_defaults_and_names():
    config = DownstreamConfig(**FILES)
    assert config.task_name() == "train" and config.label_column == "UPOS"
    assert dataclasses.replace(config, name="ud").task_name() == "ud"
    assert DownstreamConfig(**dict(FILES, train_file="a b/x y.conllu")).task_name() == "x_y"
    # Sentence tasks do not read --label_column.
    DownstreamConfig(**dict(FILES, task="sequence_classification", label_column="x"))
    settings = FinetuneConfig(num_seeds=3, seed=7)
    assert settings.seeds() == [7, 8, 9]
    assert set(settings.settings()) >= {"learning_rate", "num_train_epochs", "train_batch_size",
                                        "max_seq_length", "warmup_proportion", "num_seeds"}
    assert settings.num_seeds == FinetuneConfig().num_seeds == 3
