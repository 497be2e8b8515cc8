"""Pretraining end to end on real text: our loop, TPUEstimator on the CPU, and the reference."""

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

import reference_shim  # noqa: E402
from helpers import (  # noqa: E402
    corpus_file, english_records, has_shared_corpora, tiny_bert_config,
)
from norbert import NorbertError  # noqa: E402
from norbert.training.config import (  # noqa: E402
    LOOP, TPU_ESTIMATOR, OptimizerConfig, PretrainingConfig,
)
from norbert.training.spec import RunConfig  # noqa: E402
from norbert.training.start import Start  # noqa: E402
from norbert.training.pretraining import TrainingWarning, run_pretraining  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
REPO = os.path.dirname(HERE)
SEQ, PRED = 64, 10
TINY = tiny_bert_config()
METRICS = {"global_step", "loss", "masked_lm_accuracy", "masked_lm_loss",
           "next_sentence_accuracy", "next_sentence_loss"}


@pytest.fixture(scope="module")
def data(tmp_path_factory, corpus_paths, uncased_vocab_path):
    """Records from the first 120 kB of the English corpus, and a tiny BERT config."""
    root = tmp_path_factory.mktemp("training")
    english_records(root, corpus_paths, uncased_vocab_path, 120_000, max_seq_length=SEQ,
                    max_predictions_per_seq=PRED, dupe_factor=2)
    (root / "bert_config.json").write_text(TINY)
    return root


@contextlib.contextmanager
def _recorded():
    """([absl log messages], [folders scanned for checkpoints]) of the runs made inside."""
    import logging

    from norbert.model import checkpoints

    messages, scans = [], []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    scan = checkpoints.intact_checkpoints
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(checkpoints, "intact_checkpoints",
                          lambda folder: scans.append(folder) or scan(folder))
            yield messages, scans
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def recorded_trained_run(data, tmp_path_factory):
    """(folder, results, absl log messages, folders scanned for checkpoints): 20 steps of
    training on ``data`` from fresh weights (checkpoint model.ckpt-20), then its evaluation
    (eval_results.txt), run once for the tests that check that run or start from its trained
    model; they copy the folder before writing into it."""
    out = tmp_path_factory.mktemp("trained20") / "run"
    with warnings.catch_warnings(), _recorded() as (messages, scans):
        warnings.simplefilter("ignore", TrainingWarning)  # evaluating on the training data
        result = run_pretraining(*_configs(data, out, 20))
    return out, result, messages, scans


@pytest.fixture(scope="module")
def trained_run(recorded_trained_run):
    """(folder, results) of ``recorded_trained_run``."""
    return recorded_trained_run[:2]


@pytest.fixture(scope="module")
def resumed_run(data, trained, tmp_path_factory):
    """A copy of ``trained`` resumed to step 30 and evaluated: its folder, results, absl log
    messages, folders scanned for checkpoints, and the checkpoint it resumed from."""
    out = _copy(trained, tmp_path_factory.mktemp("resumed30") / "run")
    first = tf.train.latest_checkpoint(str(out))  # step 20
    with warnings.catch_warnings(), _recorded() as (messages, scans):
        warnings.simplefilter("ignore", TrainingWarning)  # evaluating on the training data
        result = run_pretraining(*_configs(data, out, 30))
    return types.SimpleNamespace(folder=out, result=result, messages=messages, scans=scans,
                                 resumed_from=first)


@pytest.fixture(scope="module")
def trained(trained_run):
    """The folder of ``trained_run`` (read only)."""
    return trained_run[0]


def _copy(folder, target):
    """``folder`` copied to ``target`` without its eval_results.txt: a run into the copy
    that should write one cannot pass on the one already there."""
    shutil.copytree(str(folder), str(target), ignore=shutil.ignore_patterns("eval_results.txt"))
    return target


def _configs(data, out, steps, **kw):
    config = PretrainingConfig(
        input_file=str(data / "train.tfrecord"), bert_config_file=str(data / "bert_config.json"),
        max_seq_length=kw.pop("max_seq_length", SEQ), max_predictions_per_seq=PRED,
        do_train=kw.pop("do_train", True), do_eval=kw.pop("do_eval", True),
        max_eval_steps=10, engine=kw.pop("engine", LOOP),
        init_checkpoint=kw.pop("init_checkpoint", None),
    )
    optimizer = OptimizerConfig(learning_rate=kw.pop("learning_rate", 1e-3),
                                num_train_steps=steps, num_warmup_steps=2)
    run = RunConfig(output_dir=str(out), save_checkpoints_steps=10, log_every_steps=10,
                    train_batch_size=16, eval_batch_size=8, seed=1)
    return config, optimizer, run


def _read_results(path):
    with open(path) as f:
        pairs = [line.rstrip("\n").split(" = ") for line in f]
    return {k: float(v) for k, v in pairs}


def test_loop_trains_evaluates_and_resumes(trained_run, resumed_run):
    trained, result = trained_run  # 20 steps, then evaluated
    assert set(result) == METRICS and result["global_step"] == 20
    written = _read_results(trained / "eval_results.txt")
    assert written["masked_lm_loss"] == pytest.approx(float(result["masked_lm_loss"]), rel=1e-6)
    again = resumed_run.result  # a copy of it resumed to step 30
    assert again["global_step"] == 30
    assert again["masked_lm_loss"] < result["masked_lm_loss"]


@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
def test_tpu_estimator_path_runs_on_cpu(data, tmp_path):
    out = tmp_path / "tpu"
    if not reference_shim.has_estimator():  # TF >= 2.16: a clear error instead
        with pytest.raises(NorbertError, match="needs TPUEstimator.*tensorflow==2.15"):
            run_pretraining(*_configs(data, out, 10, engine=TPU_ESTIMATOR))
        return
    result = run_pretraining(*_configs(data, out, 10, engine=TPU_ESTIMATOR))
    assert set(result) == METRICS and result["global_step"] == 10
    assert os.path.exists(str(out / "model.ckpt-10.index"))
    assert (out / "eval_results.txt").exists()


@pytest.fixture(scope="module")
def googles_evals(data, trained, tmp_path_factory):
    """Google's run_pretraining.py evaluating the 20 trained steps twice, in one process:
    {"output_dir": the numbers of a copy of ``trained`` evaluated in its folder,
    "init_checkpoint": those of --init_checkpoint=its model.ckpt-20 into an --output_dir two
    levels from existing}; None on TF >= 2.16 (no tf.estimator)."""
    if not reference_shim.has_estimator():
        return None
    root = tmp_path_factory.mktemp("googles")
    in_folder = _copy(trained, root / "reference")
    new = root / "init" / "new" / "eval"
    _reference_run_pretraining(
        _eval_flags(data) + ["--output_dir=%s" % in_folder],
        _eval_flags(data) + ["--init_checkpoint=%s" % (trained / "model.ckpt-20"),
                             "--output_dir=%s" % new])
    return {"output_dir": _read_results(in_folder / "eval_results.txt"),
            "init_checkpoint": _read_results(new / "eval_results.txt")}


@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
def test_eval_numbers_equal_googles_run_pretraining(data, trained, googles_evals, tmp_path):
    if not reference_shim.has_estimator():
        pytest.skip("the reference's run_pretraining needs tf.estimator (TensorFlow <= 2.15)")
    ours = _copy(trained, tmp_path / "ours")  # 20 steps of our training
    run_pretraining(*_configs(data, ours, 20, do_train=False))
    expected = googles_evals["output_dir"]
    got = _read_results(ours / "eval_results.txt")
    assert set(got) == set(expected) == METRICS
    for key in METRICS:
        assert got[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key


def _eval_flags(data):
    """The flags of an eval-only run on ``data``, in both scripts (no --output_dir)."""
    return ["--input_file=%s" % (data / "train.tfrecord"),
            "--bert_config_file=%s" % (data / "bert_config.json"), "--do_eval=True",
            "--max_seq_length=%d" % SEQ, "--max_predictions_per_seq=%d" % PRED,
            "--eval_batch_size=8", "--max_eval_steps=10"]


def _reference_run_pretraining(*runs):
    """Google's run_pretraining.py (TF <= 2.15, through reference_shim) in a subprocess: its
    main once per list of flags in ``runs``, in turn, each from the flags' defaults (one
    process start-up for all)."""
    code = (
        "import json, sys; sys.path.insert(0, %r); import reference_shim; "
        "reference_shim.install(); from absl import app, flags; "
        "from bert import run_pretraining as r\n"
        "def main(_):\n"
        "    for argv in json.loads(sys.argv[1]):\n"
        "        flags.FLAGS.unparse_flags(); flags.FLAGS(sys.argv[:1] + argv); r.main(None)\n"
        "app.run(main, argv=sys.argv[:1])" % HERE
    )
    done = subprocess.run([sys.executable, "-c", code, json.dumps(runs)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
def test_eval_only_into_a_new_folder_equals_googles(data, trained, googles_evals, tmp_path):
    """--do_eval alone, from --init_checkpoint, into an --output_dir two levels from existing:
    the folders are made first, as Google's script does, and the numbers are Google's."""
    trained = _copy(trained, tmp_path / "trained")  # 20 steps of training
    flags = _eval_flags(data) + ["--init_checkpoint=%s" % (trained / "model.ckpt-20")]
    ours = tmp_path / "ours" / "new" / "eval"
    script = os.path.join(REPO, "scripts", "run_pretraining.py")
    done = subprocess.run([sys.executable, script, "--output_dir=%s" % ours] + flags,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert os.listdir(str(ours)) == ["eval_results.txt"]  # no lock, nothing else
    got = _read_results(ours / "eval_results.txt")
    assert set(got) == METRICS
    assert got["global_step"] == 0  # as Google's: the init checkpoint's variables, not its step
    if googles_evals is not None:  # the same checkpoint, flags and folder depth in Google's
        expected = googles_evals["init_checkpoint"]
    else:  # TF >= 2.16: the same checkpoint evaluated in its own folder instead
        expected = {k: float(v) for k, v in
                    run_pretraining(*_configs(data, trained, 20, do_train=False)).items()}
        expected["global_step"] = 0
    assert set(expected) == METRICS
    for key in METRICS:
        assert got[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize("engine", [LOOP, TPU_ESTIMATOR])
@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
def test_a_damaged_record_is_named_on_either_engine(data, tmp_path, engine):
    if engine == TPU_ESTIMATOR and not reference_shim.has_estimator():
        pytest.skip("TPUEstimator needs tf.estimator (TensorFlow <= 2.15)")
    from norbert.data import tfrecord
    from norbert.training.record_checks import TAIL_BYTES

    framed = [tfrecord.frame(r) for r in tfrecord.read_records(str(data / "train.tfrecord"))]
    framed = framed * (3 * TAIL_BYTES // sum(len(f) for f in framed) + 1)
    damaged = bytearray(b"".join(framed))
    start = sum(len(f) for f in framed[:29])
    damaged[start + 12 + 7] ^= 0xFF  # record 30's data: read in the first step
    path = tmp_path / "corrupt.tfrecord"
    path.write_bytes(bytes(damaged))
    config, optimizer, run = _configs(data, tmp_path / "run", 5, do_eval=False, engine=engine)
    config = dataclasses.replace(config, input_file=str(path))
    with pytest.raises(NorbertError, match=r"%s is damaged: record 30 \(at byte %d\) is corrupt"
                                           % (path, start)):
        run_pretraining(config, optimizer, run)


def test_mismatched_sequence_length_is_caught_before_training(data, tmp_path):
    with pytest.raises(NorbertError, match=r"--max_seq_length=32 does not match the data: "
                                           r".*train.tfrecord its sidecar says max_seq_length=64"):
        run_pretraining(*_configs(data, tmp_path / "x", 5, max_seq_length=32))
    assert not (tmp_path / "x").exists() or not os.listdir(str(tmp_path / "x"))


def test_sequence_longer_than_the_model_is_an_error(data, tmp_path):
    with pytest.raises(NorbertError, match="longer than the model's max_position_embeddings=64"):
        run_pretraining(*_configs(data, tmp_path / "x", 5, max_seq_length=128))


def test_missing_init_checkpoint_is_an_error(data, tmp_path):
    with pytest.raises(NorbertError, match="--init_checkpoint=.*nope: no checkpoint there"):
        run_pretraining(*_configs(data, tmp_path / "x", 5, init_checkpoint=str(tmp_path / "nope")))


def test_guidance_warnings(data, tmp_path):
    config, optimizer, run = _configs(data, tmp_path / "x", 5, do_train=False, do_eval=False)
    with pytest.raises(NorbertError, match="nothing to do"):
        run_pretraining(config, optimizer, run)
    from norbert.training.pretraining import guidance

    config, optimizer, _ = _configs(data, tmp_path / "x", 5, init_checkpoint="ckpt",
                                    learning_rate=1e-3)
    with pytest.warns(TrainingWarning) as caught:
        guidance(config, OptimizerConfig(learning_rate=1e-3, num_train_steps=5,
                                         num_warmup_steps=10))
    messages = " | ".join(str(w.message) for w in caught)
    assert "high for continuing" in messages
    assert "never reaches its peak" in messages
    assert "evaluating on the training data" in messages


def test_records_of_another_vocab_or_casing_than_the_model_warn(data, tmp_path,
                                                                uncased_vocab_path):
    """The records' sidecar against the vocab.txt beside --init_checkpoint."""
    from norbert.data.builder import create_pretraining_data
    from norbert.training.pretraining import check_records_fit_model

    records = [str(data / "train.tfrecord")]  # built with the uncased vocab, lower-cased
    model = tmp_path / "model"
    model.mkdir()
    vocab = open(uncased_vocab_path, encoding="utf-8").read()
    (model / "vocab.txt").write_text(vocab, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the model's own vocab and casing: nothing to say
        check_records_fit_model(records, str(model / "bert_model.ckpt"))
    (model / "vocab.txt").write_text(vocab.replace("[unused0]", "hello", 1), encoding="utf-8")
    with pytest.warns(TrainingWarning, match=r"train.tfrecord was built with the vocab .*"
                                             r"vocab.txt, not with .*model/vocab.txt beside"):
        check_records_fit_model(records, str(model / "bert_model.ckpt"))
    # The same vocab, but the text kept its case: an uncased model never saw capitals.
    (model / "vocab.txt").write_text(vocab, encoding="utf-8")
    (tmp_path / "text.txt").write_text("The Quick Brown Fox.\nIt Jumps Over The Dog.\n\n"
                                       "Another Document Here.\nWith Two Lines.\n")
    create_pretraining_data(input_file=str(tmp_path / "text.txt"),
                            output_file=str(tmp_path / "cased.tfrecord"),
                            vocab_file=uncased_vocab_path, do_lower_case=False,
                            max_seq_length=SEQ, max_predictions_per_seq=PRED)
    with pytest.warns(TrainingWarning, match="cased.tfrecord was built with do_lower_case=False"):
        check_records_fit_model([str(tmp_path / "cased.tfrecord")], str(model / "bert_model.ckpt"))
    # An uncased vocab that kept its accents ("på", "være"): records whose tokenizer stripped
    # them never use those tokens; records built with --strip_accents=false do.
    accented = "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "på", "være", "å", "ja",
                          "nei", "pa", "vare", "a", "."]) + "\n"
    (model / "vocab.txt").write_text(accented, encoding="utf-8")
    (tmp_path / "nb.txt").write_text("Ja på.\nNei være.\n\nJa å.\nNei på.\n", encoding="utf-8")
    for name, strip in (("stripped", None), ("kept", False)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the builder warns of the mismatch too
            create_pretraining_data(input_file=str(tmp_path / "nb.txt"),
                                    output_file=str(tmp_path / (name + ".tfrecord")),
                                    vocab_file=str(model / "vocab.txt"), strip_accents=strip,
                                    max_seq_length=SEQ, max_predictions_per_seq=PRED)
    with pytest.warns(TrainingWarning, match="stripped.tfrecord was built with "
                                             "do_lower_case=True, .*the vocab keeps accents"):
        check_records_fit_model([str(tmp_path / "stripped.tfrecord")],
                                str(model / "bert_model.ckpt"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_records_fit_model([str(tmp_path / "kept.tfrecord")], str(model / "bert_model.ckpt"))


def test_script_bad_input_is_one_line_and_exit_2(data, tmp_path):
    script = os.path.join(REPO, "scripts", "run_pretraining.py")
    args = [sys.executable, script, "--input_file=%s" % (tmp_path / "none*.tfrecord"),
            "--output_dir=%s" % (tmp_path / "out"), "--do_train", "--max_seq_length=64",
            "--bert_config_file=%s" % (data / "bert_config.json")]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: --input_file: no files match %r (check the path; quote globs so "
                      "the shell leaves them)" % str(tmp_path / "none*.tfrecord")]


@pytest.fixture(scope="module")
def learning_setup(tmp_path_factory, corpus_paths):
    """A 2000-piece vocab and records from English text: 400 kB to train on, a later part
    held out, and a small file to overfit; a small BERT without dropout."""
    from tokenizers import BertWordPieceTokenizer

    from norbert.data.builder import DataConfig, create_pretraining_data

    if not has_shared_corpora(corpus_paths):
        pytest.skip("learning needs 575 kB of English: the shared corpora (%s) are absent"
                    % os.path.join("..", "shared", "data"))
    root = tmp_path_factory.mktemp("learning")
    english = corpus_file("english", corpus_paths)
    with open(english, "rb") as f:
        text = f.read()
    parts = {"train": text[:400_000], "heldout": text[420_000:540_000],
             "small": text[560_000:575_000]}
    for name, part in parts.items():
        # Whole documents only: cut at blank lines.
        body = part.split(b"\n\n", 1)[-1].rsplit(b"\n\n", 1)[0]
        (root / (name + ".txt")).write_bytes(body)
    trainer = BertWordPieceTokenizer(lowercase=True)
    trainer.train([str(root / "train.txt")], vocab_size=2000, show_progress=False,
                  special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    vocab = trainer.save_model(str(root))[0]
    for name, dupe in [("train", 3), ("heldout", 1), ("small", 1)]:
        create_pretraining_data(DataConfig(
            input_file=str(root / (name + ".txt")), output_file=str(root / (name + ".tfrecord")),
            vocab_file=vocab, max_seq_length=SEQ, max_predictions_per_seq=PRED, dupe_factor=dupe,
        ))
    (root / "bert_config.json").write_text(tiny_bert_config(
        vocab_size=2000, hidden_size=128, intermediate_size=256, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0))
    return root


def _majority_share(records):
    from collections import Counter

    from norbert.data import tfrecord

    counts = Counter()
    for record in tfrecord.read_records(str(records)):
        features = tfrecord.decode_example(record)
        for label, weight in zip(features["masked_lm_ids"], features["masked_lm_weights"]):
            if weight > 0:
                counts[label] += 1
    return counts.most_common(1)[0][1] / sum(counts.values())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
def test_small_bert_learns_then_overfits_a_small_file(learning_setup, tmp_path):
    root = learning_setup
    config = PretrainingConfig(
        input_file=str(root / "train.tfrecord"), eval_input_file=str(root / "heldout.tfrecord"),
        bert_config_file=str(root / "bert_config.json"), max_seq_length=SEQ,
        max_predictions_per_seq=PRED, do_train=True, do_eval=True, max_eval_steps=40,
    )
    run = RunConfig(output_dir=str(tmp_path / "scratch"), save_checkpoints_steps=10_000,
                    log_every_steps=250, train_batch_size=32, eval_batch_size=32, seed=3)
    optimizer = OptimizerConfig(learning_rate=1e-3, num_train_steps=1500, num_warmup_steps=100)
    learned = run_pretraining(config, optimizer, run)
    baseline = _majority_share(root / "heldout.tfrecord")
    # On held-out text: well above always guessing the commonest token.
    assert learned["masked_lm_accuracy"] > 2.5 * baseline, (learned, baseline)

    # Continue from that checkpoint on a small file, as Google's README shows with BERT-base.
    small = dataclasses.replace(
        config, input_file=str(root / "small.tfrecord"), eval_input_file=None,
        init_checkpoint=str(tmp_path / "scratch"), max_eval_steps=4,
    )
    run = dataclasses.replace(run, output_dir=str(tmp_path / "continued"), eval_batch_size=8)
    optimizer = OptimizerConfig(learning_rate=1e-3, num_train_steps=60, num_warmup_steps=5)
    overfit = run_pretraining(small, optimizer, run)
    assert overfit["global_step"] == 60
    assert overfit["masked_lm_accuracy"] > 0.9, overfit


def test_python_api_shows_progress_without_logging_set_up(data, tmp_path):
    """A notebook's user calls run_pretraining with nothing configured: the steps show."""
    code = ("import norbert; norbert.run_pretraining(input_file=%r, bert_config_file=%r, "
            "output_dir=%r, max_seq_length=%d, max_predictions_per_seq=%d, do_train=True, "
            "train_batch_size=8, num_train_steps=3, num_warmup_steps=0, log_every_steps=100)"
            % (str(data / "train.tfrecord"), str(data / "bert_config.json"),
               str(tmp_path / "run"), SEQ, PRED))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 3/3" in done.stderr and "steps/s" in done.stderr and "ETA" in done.stderr


def test_a_slow_run_logs_on_time_too(data, tmp_path, caplog, monkeypatch):
    """log_every_secs=1 with log_every_steps=1000: lines come by the clock."""
    import logging

    from norbert.training import loop

    clock = [0.0]

    def tick():  # each call a second later: every step takes "seconds"
        clock[0] += 1.0
        return clock[0]

    monkeypatch.setattr(loop.time, "time", tick)
    caplog.set_level(logging.INFO, logger="absl")
    config, optimizer, run = _configs(data, tmp_path / "run", 4, do_eval=False)
    run = dataclasses.replace(run, log_every_steps=1000, log_every_secs=2)
    run_pretraining(config, optimizer, run)
    logged = [line for line in caplog.text.splitlines() if "/4  loss" in line]
    assert len(logged) >= 2, caplog.text  # not only the last step's


def _copy_checkpoint(source, target, keep):
    """A checkpoint of ``source``'s variables whose names ``keep`` accepts."""
    reader = tf.train.load_checkpoint(source)
    with tf.Graph().as_default():
        made = [tf.get_variable(name, initializer=reader.get_tensor(name))
                for name, _ in tf.train.list_variables(source) if keep(name)]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            tf.train.Saver(made).save(sess, target)
    return target


def test_an_encoder_without_heads_is_evaluated_with_fresh_heads(data, trained, tmp_path):
    from norbert.training.loop import UntrainedHeadWarning

    trained = tf.train.latest_checkpoint(str(trained))  # read only
    encoder = _copy_checkpoint(trained, str(tmp_path / "encoder" / "bert_model.ckpt"),
                               lambda n: n.startswith("bert/") and "adam" not in n
                               and not n.startswith("bert/pooler/"))
    results = []
    for name in ("a", "b"):
        config, optimizer, run = _configs(data, tmp_path / name, 2, do_train=False,
                                          init_checkpoint=encoder)
        with pytest.warns(UntrainedHeadWarning,
                          match=r"no .*bert/pooler/dense/kernel.*cls/predictions/output_bias.*"
                                r"the numbers measure an untrained head"):
            results.append(run_pretraining(config, optimizer, run))
    assert np.isfinite(results[0]["masked_lm_loss"])
    assert results[0]["masked_lm_loss"] == results[1]["masked_lm_loss"]  # seeded heads
    # An encoder variable missing is still a config that does not fit the checkpoint.
    broken = _copy_checkpoint(trained, str(tmp_path / "broken" / "bert_model.ckpt"),
                              lambda n: not n.startswith("bert/encoder/layer_0/output/dense"))
    config, optimizer, run = _configs(data, tmp_path / "c", 2, do_train=False,
                                      init_checkpoint=broken)
    with pytest.raises(NorbertError, match=r"lacks 2 variables of this model \(bert/encoder/"):
        run_pretraining(config, optimizer, run)


def test_resuming_says_once_that_init_checkpoint_is_not_used(data, trained, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="absl")
    first = tf.train.latest_checkpoint(str(_copy(trained, tmp_path / "run")))  # step 20
    config, optimizer, run = _configs(data, tmp_path / "run", 21, do_eval=False,
                                      init_checkpoint=first)
    run_pretraining(config, optimizer, run)
    assert caplog.text.count("is not used") == 1
    assert "resuming from %s: --init_checkpoint=%s is not used" % (first, first) in caplog.text


def test_the_run_plan_is_decided_once_and_logged_as_one_block(recorded_trained_run,
                                                              resumed_run):
    out, _, messages, scans = recorded_trained_run  # 20 steps from fresh weights, evaluated
    assert scans == [str(out)]  # the checkpoint folder scanned once per run
    block = messages[messages.index("run plan:") + 1:][:6]
    assert block == [
        "  engine: loop on one device",
        "  start: fresh weights (no checkpoint in --output_dir, no --init_checkpoint)",
        "  train: to step 20, batches of 16",
        "  data: a new stream, seed 1 (--seed=1)",
        "  length buckets: batches cut to the shortest of 8,16,24,32,40,48,56,64 that holds "
        "their longest example, their masked-LM predictions to the fewest of 4,8,10 that holds "
        "the last real one",
        "  evaluate: 10 batches of 8 from --input_file"], messages
    assert resumed_run.scans == [str(resumed_run.folder)]
    assert ("  start: resume %s (1 older intact checkpoint kept in reserve)"
            % resumed_run.resumed_from) in resumed_run.messages  # model.ckpt-10 the older
    # With nothing in reserve the line is the checkpoint alone.
    assert Start(resume=[resumed_run.resumed_from]).describe() == (
        "resume %s" % resumed_run.resumed_from)
    assert "  data: continues where model.ckpt-20 left it (seed 1)" in resumed_run.messages


def test_the_plan_is_typed_and_names_the_engine_start_and_inputs(data, trained, tmp_path):
    from norbert.training.distribution import DistributionConfig
    from norbert.training.mixing import MixingConfig
    from norbert.model.precision_config import PrecisionConfig
    from norbert.training.pretraining import Settings, make_plan
    from norbert.training.config import TpuConfig

    donor = trained  # read only: a plan creates nothing
    config, optimizer, run = _configs(data, tmp_path / "run", 2, do_eval=False,
                                      init_checkpoint=str(donor))
    config = dataclasses.replace(config, init_optimizer_state=True)
    settings = Settings(config, optimizer, run, TpuConfig(), PrecisionConfig(),
                        DistributionConfig(distribution="mirrored", num_cpu_replicas=2),
                        MixingConfig())
    plan = make_plan(settings)
    assert plan.engine == LOOP and plan.replicas == 2 and plan.chief
    assert plan.start.init_checkpoint == tf.train.latest_checkpoint(str(donor))
    assert plan.start.init_optimizer_state and not plan.start.resume
    assert plan.evaluation is None
    assert plan.train.input_fn.config.input_files == [str(data / "train.tfrecord")]
    assert not (tmp_path / "run").exists()  # a plan creates nothing
    assert plan.lines(settings)[:2] == [
        "engine: loop, mirrored over 2 replicas",
        "start: initialise from %s (weights, optimizer state)" % plan.start.init_checkpoint]
    with pytest.raises(NorbertError, match="--train_batch_size=16 does not divide among 3"):
        make_plan(dataclasses.replace(settings, distribution=DistributionConfig(
            distribution="mirrored", num_cpu_replicas=3)))


def test_a_resume_on_a_tpu_says_what_its_dropout_masks_are_keyed_by(data, trained, tmp_path):
    from norbert.training.distribution import DistributionConfig
    from norbert.training.mixing import MixingConfig
    from norbert.model.precision_config import PrecisionConfig
    from norbert.training.pretraining import Settings, make_plan
    from norbert.training.config import TpuConfig

    out = _copy(trained, tmp_path / "run")
    settings = Settings(*_configs(data, out, 30, do_eval=False),
                        TpuConfig(use_tpu=True, tpu_name="my-tpu"), PrecisionConfig(),
                        DistributionConfig(), MixingConfig())
    said = [line for line in make_plan(settings).lines(settings) if line.startswith("dropout")]
    assert said == ["dropout: masks keyed by the batch numbers the input pipeline carries "
                    "(restored with the data position); checked with TPUEstimator on the CPU, "
                    "not on TPU hardware"]
    on_cpu = dataclasses.replace(settings, tpu=TpuConfig())
    assert not [line for line in make_plan(on_cpu).lines(on_cpu) if line.startswith("dropout")]


def test_a_stop_signal_while_planning_ends_the_run_before_anything_is_created(data, tmp_path,
                                                                              monkeypatch):
    import signal

    from norbert.training import pretraining

    plan = pretraining.make_plan

    def preempted(settings):  # the signal lands while the records are checked
        os.kill(os.getpid(), signal.SIGTERM)
        return plan(settings)

    monkeypatch.setattr(pretraining, "make_plan", preempted)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        run_pretraining(*_configs(data, tmp_path / "new" / "run", 2))
    assert not (tmp_path / "new").exists()
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_stop_signal_ends_tpu_estimator_training_after_saving(data, tmp_path):
    if not reference_shim.has_estimator():
        pytest.skip("TPUEstimator needs tf.estimator (TensorFlow <= 2.15)")
    from norbert.training import engines
    from norbert.training.distribution import DistributionConfig
    from norbert.training.mixing import MixingConfig
    from norbert.model.precision_config import PrecisionConfig
    from norbert.training.model_fn import ModelFnConfig, build_model_fn
    from norbert.training.pretraining import Settings, make_plan
    from norbert.training.stop import StopSignals
    from norbert.training.config import TpuConfig

    config, optimizer, run = _configs(data, tmp_path / "tpu", 1000, engine=TPU_ESTIMATOR)
    settings = Settings(config, optimizer, run, TpuConfig(),
                        PrecisionConfig(), DistributionConfig(), MixingConfig())
    plan = make_plan(settings)
    model_fn = build_model_fn(ModelFnConfig(plan.bert_config, optimizer))
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        engines.on_estimator(plan, settings, model_fn, StopSignals(received="SIGTERM"))
    saved = tf.train.latest_checkpoint(str(tmp_path / "tpu"))
    # Stopped after the first session call, then saved: on the CPU a call is one step (on a
    # TPU one loop of iterations_per_loop steps).
    assert saved.endswith("model.ckpt-1")
    assert not (tmp_path / "tpu" / "eval_results.txt").exists()


@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
def test_without_seed_the_dropout_seed_is_the_one_kept_with_the_data_position(
        data, tmp_path, monkeypatch):
    from norbert.training import data_position, model_fn

    seeds = []
    real = model_fn.build_model_fn

    def recording(config):
        seeds.append(config.dropout_seed)
        return real(config)

    monkeypatch.setattr(model_fn, "build_model_fn", recording)  # imported by the run from here
    out = tmp_path / "unseeded"
    for steps in (1, 2):  # a new run, then its resume
        config, optimizer, run = _configs(data, out, steps, do_eval=False)
        run_pretraining(config, optimizer, dataclasses.replace(run, seed=None))
    kept = data_position.read_stream(data_position.position_path(str(out), 0, 1))
    assert kept is not None and seeds == [kept.run_seed, kept.run_seed]
