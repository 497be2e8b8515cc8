"""One fine-tuning run: the encoder starts from the checkpoint, the head afresh, and it learns."""

import collections

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

from norbert.downstream import finetune  # noqa: E402
from norbert.downstream.config import DownstreamConfig, FinetuneConfig  # noqa: E402
from norbert.downstream.evaluate import prepare_task  # noqa: E402
from norbert.errors import NorbertError  # noqa: E402
from norbert.model.bert_config import BertConfig  # noqa: E402
from norbert.tokenization.options import TokenizerOptions  # noqa: E402

SETTINGS = FinetuneConfig(learning_rate=1e-3, num_train_epochs=5, train_batch_size=16,
                          max_seq_length=64, num_seeds=1)


@pytest.fixture(scope="module")
def task(tagged):
    root, vocab = tagged
    config = DownstreamConfig(train_file=str(root / "train.conllu"),
                              eval_file=str(root / "eval.conllu"),
                              bert_config_file=str(root / "bert_config.json"), vocab_file=vocab)
    bert = BertConfig.from_json_file(config.bert_config_file)
    return prepare_task(config, SETTINGS, TokenizerOptions(), bert), bert


def test_the_encoder_starts_from_the_checkpoint(tagged, tiny_checkpoint, task):
    _, prefix = tiny_checkpoint
    _, bert = task
    stored = tf.train.load_checkpoint(prefix)
    with tf.Graph().as_default():
        inputs = finetune._placeholders("token_classification", 8)
        finetune._logits(bert, "token_classification", 5, inputs, True)
        finetune._restore(prefix)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            values = sess.run({v.op.name: v for v in tf.global_variables()})  # one call
    for name in ("bert/embeddings/word_embeddings", "bert/encoder/layer_1/output/dense/kernel"):
        np.testing.assert_array_equal(values[name], stored.get_tensor(name))
    assert values["output_weights"].shape == (5, 32)
    assert not values["output_bias"].any()  # the head starts afresh


def test_a_checkpoint_of_another_shape(tagged, tiny_checkpoint, tmp_path):
    from helpers import tiny_bert_config

    _, prefix = tiny_checkpoint
    (tmp_path / "c.json").write_text(tiny_bert_config(hidden_size=16))
    bert = BertConfig.from_json_file(str(tmp_path / "c.json"))
    with tf.Graph().as_default():
        inputs = finetune._placeholders("token_classification", 8)
        finetune._logits(bert, "token_classification", 5, inputs, True)
        with pytest.raises(NorbertError, match="--checkpoint=.*model.ckpt-7: variable bert/"
                                               ".* has shape .* but .* in this model"):
            finetune._restore(prefix)


def test_it_learns_the_task(tiny_checkpoint, task):
    _, prefix = tiny_checkpoint
    prepared, bert = task
    output = finetune.finetune(bert, prefix, prepared.kind, len(prepared.labels),
                               prepared.train, prepared.evaluation, SETTINGS, seed=1)
    rows = len(prepared.train["input_ids"])
    assert output.steps == int(rows * 5 / 16)
    assert output.predictions.shape == prepared.evaluation["input_ids"].shape
    majority = collections.Counter(x for s in prepared.gold for x in s).most_common(1)[0][1]
    share = majority / sum(len(s) for s in prepared.gold)
    accuracy = prepared.score(output.predictions)["accuracy"]
    assert accuracy > max(0.9, share + 0.2), (accuracy, share)
    assert output.losses[output.steps] == output.final_loss < 0.5


def test_mirrored_replicas_give_the_one_device_run(tagged, tiny_checkpoint, task, tmp_path,
                                                   monkeypatch):
    """Two logical CPU devices, each with half of every batch of 16, train as one device does on
    the whole batch (same seed, dropout off so that the runs draw nothing differently): the
    same losses update by update, the same learning rates, the same predictions."""
    from helpers import tiny_bert_config
    from norbert.training.distribution import DistributionConfig

    _, prefix = tiny_checkpoint
    prepared, _ = task
    monkeypatch.setattr(finetune, "HEAD_DROPOUT", 0.0)
    (tmp_path / "c.json").write_text(tiny_bert_config(hidden_dropout_prob=0.0,
                                                      attention_probs_dropout_prob=0.0))
    bert = BertConfig.from_json_file(str(tmp_path / "c.json"))
    settings = FinetuneConfig(learning_rate=1e-3, num_train_epochs=0.5, train_batch_size=16,
                              eval_batch_size=25, max_seq_length=64, num_seeds=1, log_every=1)
    # Eval batches of 25: the last batch of each is padded to an even number of rows.
    runs = [finetune.finetune(bert, prefix, prepared.kind, len(prepared.labels), prepared.train,
                              prepared.evaluation, settings, 3, distribution)
            for distribution in (None, DistributionConfig(distribution="mirrored",
                                                          num_cpu_replicas=2))]
    one, mirrored = runs
    assert one.steps == mirrored.steps == int(len(prepared.train["input_ids"]) * 0.5 / 16)
    assert sorted(mirrored.losses) == list(range(1, one.steps + 1))
    for step in one.losses:
        assert mirrored.losses[step] == pytest.approx(one.losses[step], rel=1e-4), step
        assert mirrored.learning_rates[step] == pytest.approx(one.learning_rates[step])
    assert one.losses[one.steps] < one.losses[1]  # it learnt something
    assert mirrored.predictions.shape == one.predictions.shape
    same = (mirrored.predictions == one.predictions).mean()
    assert same > 0.99, same
    assert prepared.score(mirrored.predictions)["accuracy"] == pytest.approx(
        prepared.score(one.predictions)["accuracy"], abs=0.01)


def test_the_global_batch_divides_among_replicas(task, tiny_checkpoint):
    from norbert.training.distribution import DistributionConfig

    prepared, bert = task
    with pytest.raises(NorbertError, match="--train_batch_size=15 does not divide among 2 "
                                           "replicas"):
        finetune.finetune(bert, None, prepared.kind, len(prepared.labels), prepared.train,
                          prepared.evaluation, FinetuneConfig(train_batch_size=15,
                                                              max_seq_length=64),
                          1, DistributionConfig(distribution="mirrored", num_cpu_replicas=2))
