"""A new phase of a training (sequence length 128, then longer; another batch size) started
from the earlier phase's checkpoint in a new output_dir: the optimizer's moments carried over
with --init_optimizer_state, the schedule restarted or (--keep_global_step) continued, and the
longer phase's position embeddings trained."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

from helpers import english_records, tiny_bert_config  # noqa: E402
from norbert import NorbertError  # noqa: E402
from norbert.model import checkpoints  # noqa: E402
from norbert.model.bert_config import BertConfig  # noqa: E402
from norbert.training import input_pipeline  # noqa: E402
from norbert.training.distribution import DistributionConfig  # noqa: E402
from norbert.training.model_fn import ModelFnConfig, build_model_fn  # noqa: E402
from norbert.training.config import OptimizerConfig, PretrainingConfig  # noqa: E402
from norbert.training.pretraining import run_pretraining  # noqa: E402
from norbert.training.spec import TRAIN, RunConfig  # noqa: E402
from norbert.training.start import Start, initialise  # noqa: E402

SHORT, LONG = (32, 5), (64, 10)  # (max_seq_length, max_predictions_per_seq) of each phase
POSITIONS = "bert/embeddings/position_embeddings"
WORD = "bert/embeddings/word_embeddings"


@pytest.fixture(scope="module")
def phase_one(tmp_path_factory, corpus_paths, uncased_vocab_path):
    """Records of both lengths; phase 1 trained 6 steps at the short length with LAMB."""
    root = tmp_path_factory.mktemp("phases")
    for (seq, pred), name in ((SHORT, "short"), (LONG, "long")):
        (root / name).mkdir()
        english_records(root / name, corpus_paths, uncased_vocab_path, 60_000,
                        max_seq_length=seq, max_predictions_per_seq=pred, dupe_factor=1)
    (root / "bert_config.json").write_text(tiny_bert_config(max_position_embeddings=64))
    _train(root, "one", SHORT, 6, optimizer="lamb")
    return root


def _train(root, name, lengths, steps, optimizer="lamb", batch=8, distribution=None, **flags):
    seq, pred = lengths
    folder = "short" if lengths == SHORT else "long"
    return run_pretraining(
        PretrainingConfig(input_file=str(root / folder / "train.tfrecord"),
                          bert_config_file=str(root / "bert_config.json"), max_seq_length=seq,
                          max_predictions_per_seq=pred, do_train=True, **flags),
        OptimizerConfig(learning_rate=1e-3, num_train_steps=steps, num_warmup_steps=2,
                        optimizer=optimizer),
        RunConfig(output_dir=str(root / name), train_batch_size=batch,
                  save_checkpoints_steps=100, seed=1), distribution=distribution)


def _restored(root, optimizer, **carried):
    """The variables of a phase-2 graph (long records) right after initialisation from
    phase 1's folder, before any update, and the learning rate then."""
    with tf.Graph().as_default():
        model_fn = build_model_fn(ModelFnConfig(
            BertConfig.from_json_file(str(root / "bert_config.json")),
            OptimizerConfig(learning_rate=1e-3, num_train_steps=10, num_warmup_steps=4,
                            optimizer=optimizer)))
        input_fn = input_pipeline.make_input_fn(input_pipeline.InputConfig(
            input_files=[str(root / "long" / "train.tfrecord")], max_seq_length=LONG[0],
            max_predictions_per_seq=LONG[1], is_training=True, seed=1))
        features = tf.data.make_one_shot_iterator(input_fn({"batch_size": 4})).get_next()
        tf.train.get_or_create_global_step()
        spec = model_fn(features, None, TRAIN, {})
        initialise(Start(init_checkpoint=checkpoints.resolve(str(root / "one")), **carried),
                   TRAIN)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            values = sess.run({v.op.name: v for v in tf.global_variables()})
            rate = sess.run(spec.scalars["learning_rate"])
    return values, rate


def test_moments_carried_over_and_the_schedule_restarted(phase_one):
    phase1 = tf.train.load_checkpoint(str(phase_one / "one" / "model.ckpt-6"))
    values, rate = _restored(phase_one, "lamb", init_optimizer_state=True)
    moments = [n for n in values if n.endswith(("/lamb_m", "/lamb_v"))]
    assert len(moments) > 20
    for name in moments:
        np.testing.assert_array_equal(values[name], phase1.get_tensor(name), err_msg=name)
    assert np.abs(values[WORD + "/lamb_v"]).max() > 0  # phase 1 left real moments
    np.testing.assert_array_equal(values[WORD], phase1.get_tensor(WORD))
    assert values["global_step"] == 0 and rate == 0.0  # warm-up starts again

    kept, rate = _restored(phase_one, "lamb", init_optimizer_state=True, keep_global_step=True)
    assert kept["global_step"] == 6
    assert rate == pytest.approx(1e-3 * (1 - 6 / 10))  # past warm-up, decaying linearly

    fresh, _ = _restored(phase_one, "lamb")  # by default, weights only (Google's behaviour)
    assert not any(np.abs(fresh[n]).max() for n in moments) and fresh["global_step"] == 0


def test_another_optimizer_cannot_take_the_moments(phase_one):
    with pytest.raises(NorbertError, match=r"--init_optimizer_state: .* holds the moments of "
                                           r"--optimizer=lamb, .* --optimizer=adamw or "
                                           r"adamw_exact cannot use"):
        _restored(phase_one, "adamw", init_optimizer_state=True)
    _restored(phase_one, "adamw")  # without the flag: the weights, a fresh optimizer


def test_the_longer_phase_trains_on_from_the_shorter(phase_one):
    """Phase 2 at twice the length and another batch size, the moments carried: it trains the
    positions phase 1 never used as much as the others (without a gradient, LAMB moves a row
    by its weight decay alone, some 1e-4 of that)."""
    phase1 = tf.train.load_checkpoint(str(phase_one / "one" / "model.ckpt-6"))
    _train(phase_one, "two", LONG, 3, batch=4, init_checkpoint=str(phase_one / "one"),
           init_optimizer_state=True)
    phase2 = tf.train.load_checkpoint(str(phase_one / "two" / "model.ckpt-3"))  # its own count
    moved = np.abs(phase2.get_tensor(POSITIONS) - phase1.get_tensor(POSITIONS))  # [64, H]
    assert moved[SHORT[0]:].max() > 0.1 * moved[:SHORT[0]].max() > 0

    # The same through tf.distribute, which restores outside the replicas' model_fn.
    _train(phase_one, "kept", LONG, 9, batch=4, init_checkpoint=str(phase_one / "one"),
           init_optimizer_state=True, keep_global_step=True,
           distribution=DistributionConfig(distribution="mirrored", num_cpu_replicas=2))
    kept = tf.train.latest_checkpoint(str(phase_one / "kept"))
    assert kept.endswith("model.ckpt-9")  # 3 more steps after phase 1's 6
    assert tf.train.load_checkpoint(kept).get_tensor("global_step") == 9


def test_the_flags_need_an_init_checkpoint(phase_one):
    for flag in ("init_optimizer_state", "keep_global_step"):
        with pytest.raises(NorbertError, match="--%s needs --init_checkpoint" % flag):
            PretrainingConfig(input_file="x", bert_config_file="y", **{flag: True})
