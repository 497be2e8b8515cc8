"""Named groups of record files mixed by exponentially smoothed sampling: the shares computed,
then drawn by the training input pipeline (one worker or two), seeded, logged, evaluated."""

import collections
import logging
import random
import shutil

import numpy as np
import pytest

from norbert import NorbertError
from norbert.training import input_pipeline, record_checks
from norbert.training.input_pipeline import InputConfig
from norbert.training.mixing import (
    Group, MixingConfig, describe, mix, parse_groups, parse_weights, shares_by_exponent,
)

# -- the pure functions -------------------------------------------------------------------


def test_plain_globs_are_no_groups():
    assert parse_groups("data/a-*,data/b.tfrecord") is None
    assert parse_groups("data/lang=nb/*,gs://b/x=1/*") is None  # "=" inside a path
    assert parse_groups("nb=data/nb-*, nn = data/nn-* ,en=gs://b/en-*") == [
        ("nb", "data/nb-*"), ("nn", "data/nn-*"), ("en", "gs://b/en-*")]


@pytest.mark.parametrize("spec, message", [
    ("nb=data/nb-*,data/nn-*", r"^--input_file: 'data/nn-\*' names no group, but others do"),
    ("nb=a,nb=b", r"^--input_file: group nb is named twice"),
    ("nb=a,9x=b", r"^--input_file: group name '9x': use letters"),
    ("nb=a,nn=", r"^--input_file: group nn has no glob: write nn=<files or glob>$"),
])
def test_bad_groups_are_one_line_errors_naming_the_flag(spec, message):
    with pytest.raises(NorbertError, match=message):
        parse_groups(spec)


def test_shares_by_exponent_match_hand_computed_ones():
    sizes = [100, 10, 1]
    assert shares_by_exponent(sizes, 1.0) == pytest.approx([100 / 111, 10 / 111, 1 / 111])
    assert shares_by_exponent(sizes, 0.0) == pytest.approx([1 / 3] * 3)
    # 100^0.7 = 25.118864, 10^0.7 = 5.011872, 1^0.7 = 1; sum 31.130737
    assert shares_by_exponent(sizes, 0.7) == pytest.approx([0.806883, 0.160995, 0.032123],
                                                           abs=1e-6)
    # huge corpora: no overflow
    assert shares_by_exponent([10 ** 300, 10 ** 299], 3.0) == pytest.approx([1000 / 1001,
                                                                             1 / 1001])


def test_config_makes_shares_from_sizes_or_weights():
    names, sizes = ["nb", "nn", "en"], [100, 10, 1]
    assert MixingConfig().shares(names, sizes) == pytest.approx([100 / 111, 10 / 111, 1 / 111])
    assert MixingConfig(sampling_exponent=0.0).shares(names, sizes) == pytest.approx([1 / 3] * 3)
    weighted = MixingConfig(sampling_weights="en=2, nb=5,nn=3")
    assert weighted.shares(names, sizes) == pytest.approx([0.5, 0.3, 0.2])
    assert (MixingConfig().rule, MixingConfig(sampling_exponent=0.3).rule, weighted.rule) == (
        "records^1", "records^0.3", "--sampling_weights")
    with pytest.raises(NorbertError, match=r"^--sampling_weights must name exactly the groups "
                                           r"of --input_file \(nb, nn, en\); no weight for en; "
                                           r"no group de$"):
        MixingConfig(sampling_weights="nb=1,nn=1,de=1").shares(names, sizes)


@pytest.mark.parametrize("settings, message", [
    (dict(sampling_exponent=-0.5), r"^--sampling_exponent=-0.5 must be a number from 0"),
    (dict(sampling_exponent=float("nan")), r"^--sampling_exponent=nan must be"),
    (dict(sampling_exponent=0.7, sampling_weights="nb=1"),
     r"^--sampling_weights and --sampling_exponent exclude each other"),
    (dict(sampling_weights="nb=0.5,nn"), r"^--sampling_weights: 'nn' is not name=weight"),
    (dict(sampling_weights="nb=x"), r"^--sampling_weights: 'nb=x' is not name=weight"),
    (dict(sampling_weights="nb=0"), r"^--sampling_weights: nb=0: a weight must be a positive"),
    (dict(sampling_weights="nb=1,nb=2"), r"^--sampling_weights: nb has two weights"),
    (dict(sampling_weights=" , "), r"^--sampling_weights is empty"),
])
def test_bad_mixing_settings_are_refused_on_construction(settings, message):
    with pytest.raises(NorbertError, match=message):
        MixingConfig(**settings)


def test_mix_refuses_an_empty_group_and_describes_the_rest():
    named = [("nb", ["a", "b"]), ("nn", ["c"])]
    with pytest.raises(NorbertError, match=r"^--input_file: group nn holds no records \(1 "
                                           r"files, all empty\)"):
        mix(named, [10, 0], MixingConfig())
    config = MixingConfig(sampling_exponent=0.0)
    groups = mix(named, [300, 100], config)
    assert groups == (Group("nb", ("a", "b"), 300, 0.5), Group("nn", ("c",), 100, 0.5))
    assert describe(groups, config) == [
        "mixing 2 record groups by records^0",
        "group nb: 2 files, 300 records (75.00% of all), share 50.00%",
        "group nn: 1 files, 100 records (25.00% of all), share 50.00%"]
    assert parse_weights("nb=1e-3") == {"nb": 1e-3}


# -- drawn by the input pipeline ----------------------------------------------------------

tf = pytest.importorskip("tensorflow").compat.v1

S, P = 32, 5
NAMES = ("big", "mid", "small")
# Each group's words, and so its token ids, are its own: 5 + 20 * g ... 5 + 20 * g + 19.
WORDS = ["%s%d" % (name, i) for name in NAMES for i in range(20)]
DOCS = {"big": 400, "mid": 53, "small": 8}  # 925, 125 and 18 records


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """(folder, {group: record files}): three groups of very different sizes, "big" in two
    files, "small" without sidecar (its records counted)."""
    from norbert.data.builder import create_pretraining_data

    root = tmp_path_factory.mktemp("mixing")
    (root / "vocab.txt").write_text("\n".join(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    rng = random.Random(0)
    files = {}
    for name in NAMES:
        words = [w for w in WORDS if w.startswith(name)]
        docs = ["\n".join(" ".join(rng.choice(words) for _ in range(10)) for _ in range(4))
                for _ in range(DOCS[name])]
        (root / (name + ".txt")).write_text("\n\n".join(docs) + "\n")
        outputs = [str(root / ("%s-%d.tfrecord" % (name, k)))
                   for k in range(2 if name == "big" else 1)]
        create_pretraining_data(input_file=str(root / (name + ".txt")),
                                output_file=",".join(outputs), vocab_file=str(root / "vocab.txt"),
                                max_seq_length=S, max_predictions_per_seq=P, dupe_factor=1,
                                progress=False)
        files[name] = outputs
    for path in files["small"]:
        (root / (path.rsplit("/", 1)[1] + ".meta.json")).unlink()
    return root, files


@pytest.fixture
def bert_config(tmp_path):
    """A tiny model's bert_config.json for the sources' vocab."""
    from helpers import tiny_bert_config

    path = tmp_path / "bert_config.json"
    path.write_text(tiny_bert_config(vocab_size=len(WORDS) + 5))
    return str(path)


def _spec(root):
    return ",".join("%s=%s/%s-*" % (name, root, name) for name in NAMES)


def _groups(root, config):
    named = record_checks.record_groups(_spec(root))
    sizes = [sum(record_checks.records_in(f) for f in files) for _, files in named]
    return mix(named, sizes, config)


def _group_of(ids):
    """[B] group index of each row of input_ids [B, S]: the group most of its words are of
    (a masked token may be [MASK] or a random word)."""
    counts = np.stack([((ids >= 5 + 20 * g) & (ids < 25 + 20 * g)).sum(axis=1)
                       for g in range(len(NAMES))], axis=1)  # [B, groups]
    return counts.argmax(axis=1)


def _read(groups, seed, batches, batch_size=200, context=None, masking=None):
    """input_ids [batches * batch_size, S] drawn by the training input_fn."""
    files = [f for g in groups for f in g.files]
    input_fn = input_pipeline.make_input_fn(InputConfig(
        input_files=files, max_seq_length=S, max_predictions_per_seq=P, is_training=True,
        seed=seed, groups=groups, masking=masking))
    params = {"batch_size": batch_size}
    if context is not None:
        params["input_context"] = context
    with tf.Graph().as_default():
        ids = tf.data.make_one_shot_iterator(input_fn(params)).get_next()["input_ids"]
        with tf.Session() as sess:
            return np.concatenate([sess.run(ids) for _ in range(batches)])


def _shares(ids):
    return np.bincount(_group_of(ids), minlength=len(NAMES)) / len(ids)


def test_sizes_come_from_sidecars_or_a_count_of_the_records(sources):
    root, files = sources
    for name in NAMES:
        for path in files[name]:
            counted = record_checks.count_records(path)
            assert record_checks.records_in(path) == counted > 0
            assert counted == sum(1 for _ in tf.io.tf_record_iterator(path))


def test_drawn_shares_are_the_smoothed_ones(sources):
    root, _ = sources
    groups = _groups(root, MixingConfig(sampling_exponent=0.7))
    sizes = np.array([g.records for g in groups], float)
    intended = sizes ** 0.7 / (sizes ** 0.7).sum()
    assert [g.share for g in groups] == pytest.approx(intended.tolist())
    assert intended[2] > 2 * sizes[2] / sizes.sum()  # the small group drawn far more often
    drawn = _shares(_read(groups, seed=1, batches=200))  # 40,000 records
    assert np.abs(drawn - intended).max() < 0.01, (drawn, intended)


def test_drawn_shares_follow_explicit_weights(sources):
    root, _ = sources
    config = MixingConfig(sampling_weights="big=0.2,mid=0.3,small=0.5")
    groups = _groups(root, config)
    drawn = _shares(_read(groups, seed=2, batches=100))  # 20,000 records
    assert np.abs(drawn - [0.2, 0.3, 0.5]).max() < 0.01, drawn


def test_records_of_dynamic_masking_are_mixed_then_masked(sources):
    from norbert.data.builder import create_pretraining_data

    root, _ = sources
    for name in ("big", "small"):
        create_pretraining_data(input_file=str(root / (name + ".txt")),
                                output_file=str(root / "dynamic" / (name + ".tfrecord")),
                                vocab_file=str(root / "vocab.txt"), max_seq_length=S,
                                max_predictions_per_seq=P, masking="dynamic", progress=False)
    named = record_checks.record_groups("big=%s/dynamic/big*,small=%s/dynamic/small*"
                                        % (root, root))
    files = [f for _, group_files in named for f in group_files]
    masking = record_checks.dynamic_masking_of(files, P)
    assert masking is not None
    groups = mix(named, [sum(record_checks.records_in(f) for f in group_files)
                         for _, group_files in named], MixingConfig(sampling_exponent=0.0))
    ids = _read(groups, seed=3, batches=20, batch_size=100, masking=masking)
    assert np.abs(_shares(ids)[[0, 2]] - 0.5).max() < 0.05
    assert (ids == 4).sum() > 0.05 * (ids > 4).sum()  # [MASK]s drawn as read


def test_the_draws_are_fixed_by_the_seed(sources):
    root, _ = sources
    groups = _groups(root, MixingConfig(sampling_exponent=0.3))
    first = _read(groups, seed=5, batches=4, batch_size=16)
    np.testing.assert_array_equal(first, _read(groups, seed=5, batches=4, batch_size=16))
    other = _read(groups, seed=6, batches=4, batch_size=16)
    assert not np.array_equal(first, other)
    assert not np.array_equal(_group_of(first), _group_of(other))  # other groups drawn too


def test_two_workers_each_mix_their_own_records(sources, caplog):
    root, files = sources
    groups = _groups(root, MixingConfig(sampling_exponent=0.7))
    # An odd number of records, read by record: a share taken over the repeated stream, not
    # within the file, would give each worker the other's records in the next epoch.
    assert groups[1].records % 2 == 1
    intended = np.array([g.share for g in groups])
    contexts = [tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i,
                                           num_replicas_in_sync=2) for i in range(2)]
    read = [_read(groups, seed=1, batches=100, context=c) for c in contexts]  # 2 x 20,000
    for ids in read:  # each worker draws with the shares
        assert np.abs(_shares(ids) - intended).max() < 0.015, _shares(ids)
    together = _shares(np.concatenate(read))
    assert np.abs(together - intended).max() < 0.01, (together, intended)
    seen = [{row.tobytes() for row in ids} for ids in read]
    assert not seen[0] & seen[1]  # disjoint records ...
    every = {np.array(tf.train.Example.FromString(r).features.feature["input_ids"]
                      .int64_list.value, np.int32).tobytes()
             for name in NAMES for f in files[name] for r in tf.io.tf_record_iterator(f)}
    assert seen[0] | seen[1] == every  # ... that cover all groups' records
    # "big" has a file per worker; "mid" and "small" one file, shared by record
    assert "group mid: 1 record files for 2 workers" in caplog.text
    assert "group big:" not in caplog.text


@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
def test_run_pretraining_logs_the_groups_and_evaluates_each(sources, bert_config, tmp_path,
                                                            caplog, monkeypatch):
    from norbert import run_pretraining
    from norbert.data import sidecar

    root, files = sources
    caplog.set_level(logging.INFO)
    reads = collections.Counter()  # sidecar reads per record file: a round trip each on gs://
    read = sidecar.read

    def counted(path):
        reads[path] += 1
        return read(path)

    monkeypatch.setattr(sidecar, "read", counted)
    result = run_pretraining(
        input_file=_spec(root), eval_input_file="big=%s,small=%s" % (files["big"][0],
                                                                     files["small"][0]),
        bert_config_file=bert_config, max_seq_length=S, max_predictions_per_seq=P,
        output_dir=str(tmp_path / "run"), do_train=True, do_eval=True, train_batch_size=8,
        eval_batch_size=8, num_train_steps=2, num_warmup_steps=1, max_eval_steps=2, seed=1,
        sampling_exponent=0.7)
    run_reads = dict(reads)
    groups = _groups(root, MixingConfig(sampling_exponent=0.7))
    # Lines of the run plan's block, indented under "run plan:".
    logged = [r.getMessage().strip() for r in caplog.records
              if "--input_file: " in r.getMessage()]
    assert logged == ["--input_file: " + line
                      for line in describe(groups, MixingConfig(sampling_exponent=0.7))]
    assert logged[3].startswith("--input_file: group small: 1 files, %d records"
                                % groups[2].records)
    for metric in ("masked_lm_accuracy", "masked_lm_loss", "loss"):
        assert {metric, metric + "/big", metric + "/small"} <= set(result)
    # Each group's own numbers (after 2 steps the accuracy may well be 0 on both).
    for metric in ("masked_lm_loss", "loss"):
        assert result[metric + "/big"] != result[metric + "/small"]
    lines = (tmp_path / "run" / "eval_results.txt").read_text().splitlines()
    assert "masked_lm_accuracy/small = %s" % result["masked_lm_accuracy/small"] in lines
    # Each file's sidecar read once in the run, though some are trained and evaluated on.
    every = [path for group in files.values() for path in group]
    assert {path: run_reads.get(path) for path in every} == {path: 1 for path in every}


def test_bad_groups_stop_run_pretraining_before_anything_is_created(sources, bert_config,
                                                                    tmp_path):
    from norbert import run_pretraining

    root, files = sources
    out = tmp_path / "out"
    common = dict(bert_config_file=bert_config, max_seq_length=S, max_predictions_per_seq=P,
                  output_dir=str(out), do_train=True)
    (root / "empty").mkdir(exist_ok=True)
    (root / "empty" / "e.tfrecord").write_bytes(b"")
    both = "%s/big-*,%s/mid-*" % (root, root)
    for settings, message in [
        (dict(input_file=both, sampling_exponent=0.7),
         r"^sampling_exponent= needs named groups in input_file= to mix: name=glob"),
        (dict(input_file="big=%s/big-*,mid=%s/nothing-*" % (root, root)),
         r"^input_file= group mid: no files match '.*nothing-\*'"),
        (dict(input_file="big=%s/big-*,all=%s/*.tfrecord" % (root, root)),
         r"^input_file: .*big-0.tfrecord is in groups big and all: give each file one group"),
        (dict(input_file="big=%s/big-*,none=%s/empty/*" % (root, root)),
         r"^input_file: group none holds no records \(1 files, all empty\)"),
        (dict(input_file=_spec(root), sampling_weights="big=1,mid=1"),
         r"^sampling_weights= must name exactly the groups of input_file= \(big, mid, "
         r"small\); no weight for small$"),
    ]:
        with pytest.raises(NorbertError, match=message):
            run_pretraining(**common, **settings)
        assert not out.exists()
    shutil.rmtree(str(root / "empty"))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
@pytest.mark.parametrize("engine", ["mirrored", "tpu_estimator"])
def test_groups_train_and_evaluate_on_the_other_engines(sources, bert_config, tmp_path,
                                                        engine):
    import reference_shim
    from norbert import run_pretraining
    from norbert.training.distribution import DistributionConfig

    if engine == "tpu_estimator" and not reference_shim.has_estimator():
        pytest.skip("TPUEstimator needs tf.estimator (TensorFlow <= 2.15)")
    root, files = sources
    how = dict(engine="tpu_estimator") if engine == "tpu_estimator" else dict(
        distribution=DistributionConfig(distribution="mirrored", num_cpu_replicas=2))
    result = run_pretraining(
        input_file=_spec(root), eval_input_file="mid=%s,small=%s" % (files["mid"][0],
                                                                     files["small"][0]),
        bert_config_file=bert_config, max_seq_length=S, max_predictions_per_seq=P,
        output_dir=str(tmp_path / "run"), do_train=True, do_eval=True, train_batch_size=8,
        eval_batch_size=8, num_train_steps=2, num_warmup_steps=1, max_eval_steps=2, seed=1,
        sampling_weights="big=1,mid=1,small=1", **how)
    assert result["global_step"] == 2
    assert result["masked_lm_loss/mid"] == result["masked_lm_loss"]  # the first group's
    assert result["masked_lm_loss/small"] != result["masked_lm_loss"]


def test_pretraining_config_checks_the_groups_syntax():
    from norbert.training.config import PretrainingConfig

    with pytest.raises(NorbertError, match=r"^--input_file: group nb is named twice"):
        PretrainingConfig(input_file="nb=a,nb=b", bert_config_file="c")
    with pytest.raises(NorbertError, match=r"^--eval_input_file: 'b' names no group"):
        PretrainingConfig(input_file="a", bert_config_file="c", eval_input_file="nb=a,b")
