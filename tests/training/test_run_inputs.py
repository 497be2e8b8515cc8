"""The records a run reads (``norbert.training.run_inputs``): files found per flag, checked
against the run's shapes, made into inputs that say how they read, mixed by named groups in
training and read group by group in evaluation. No graph is built."""

import logging
import random

import pytest

from norbert.data.builder import DataConfig, create_pretraining_data
from norbert.errors import NorbertError
from norbert.training import record_checks
from norbert.training.mixing import MixingConfig
from norbert.training.run_inputs import (RecordShape, bucketed, evaluation_inputs, reseeded,
                                         sources_of, training_inputs)
from helpers import SPECIALS

WORDS = ["w%d" % i for i in range(60)]
SHAPE = RecordShape(32, 5, (len(SPECIALS) + len(WORDS), "bert_config.json"))


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Two shards of records with masks written (static) and one with masks left to training
    (dynamic), built from random words; {kind: [files]}."""
    root = tmp_path_factory.mktemp("run_inputs")
    rng = random.Random(0)
    docs = ["\n".join(" ".join(rng.choice(WORDS) for _ in range(10)) for _ in range(5))
            for _ in range(20)]
    (root / "text.txt").write_text("\n\n".join(docs) + "\n")
    (root / "vocab.txt").write_text("\n".join(SPECIALS + WORDS) + "\n")
    built = {}
    for kind, settings in (("static", dict(num_output_shards=2, num_workers=1)),
                           ("dynamic", dict(masking="dynamic"))):
        out = root / kind / "records.tfrecord"
        out.parent.mkdir()
        create_pretraining_data(DataConfig(
            input_file=str(root / "text.txt"), output_file=str(out),
            vocab_file=str(root / "vocab.txt"), max_seq_length=32, max_predictions_per_seq=5,
            dupe_factor=2, progress=False, **settings))
        built[kind] = sorted(str(p) for p in out.parent.iterdir()
                             if not p.name.endswith(".json"))
    return built


def _read(*files):
    return record_checks.read_sidecars(list(files))


def test_a_flags_files_plain_or_in_named_groups(records):
    a, b = records["static"]
    plain = sources_of(a[:-len("00000-of-00002")] + "*", "--input_file")
    assert (plain.files, plain.groups) == ([a, b], None)
    named = sources_of("nb=%s,en=%s" % (a, b), "--eval_input_file")
    assert named.flag == "--eval_input_file" and named.files == [a, b]
    assert named.groups == [("nb", [a]), ("en", [b])]


def test_training_inputs_say_how_their_records_read(records):
    dynamic = records["dynamic"]
    inputs = training_inputs(sources_of(dynamic[0], "--input_file"), SHAPE, 3, MixingConfig(),
                             _read(*dynamic))
    assert inputs.notes == ("masks drawn as records are read (masked_lm_prob 0.15)",)
    config = inputs.input_fn.config
    assert config.is_training and config.seed == 3 and config.masking is not None
    static = records["static"]
    inputs = training_inputs(sources_of(",".join(static), "--input_file"), SHAPE, 3,
                             MixingConfig(), _read(*static))
    assert inputs.notes == () and inputs.input_fn.config.masking is None
    assert inputs.files_by_source() == [static]


def test_records_that_do_not_fit_the_run_are_refused_before_any_graph(records):
    static = records["static"]
    other = RecordShape(64, 5, SHAPE.vocab)
    with pytest.raises(NorbertError, match="--max_seq_length=64 does not match the data"):
        training_inputs(sources_of(static[0], "--input_file"), other, 1, MixingConfig(),
                        _read(*static))


def test_mixing_needs_named_groups_and_mixes_them_by_their_shares(records):
    a, b = records["static"]
    with pytest.raises(NorbertError, match="--sampling_weights needs named groups"):
        training_inputs(sources_of(a, "--input_file"), SHAPE, 1,
                        MixingConfig(sampling_weights="nb=1"), _read(a))
    inputs = training_inputs(sources_of("nb=%s,en=%s" % (a, b), "--input_file"), SHAPE, 1,
                             MixingConfig(sampling_weights="nb=0.7,en=0.3"), _read(a, b))
    groups = inputs.input_fn.config.groups
    assert [(g.name, g.files, g.share) for g in groups] == [("nb", (a,), 0.7), ("en", (b,), 0.3)]
    assert [g.records for g in groups] == [record_checks.records_in(a),
                                           record_checks.records_in(b)]
    assert inputs.notes[0].startswith("mixing 2 record groups by ")
    assert inputs.files_by_source() == [[a], [b]]


def test_evaluation_reads_each_group_alone_when_it_holds_a_batch(records, caplog):
    a, b = records["static"]
    sources = sources_of("nb=%s,en=%s" % (a, b), "--eval_input_file")
    smaller = min(record_checks.records_in(a), record_checks.records_in(b))
    inputs = evaluation_inputs(sources, SHAPE, 1, smaller, _read(a, b))
    assert [name for name, _ in inputs.groups] == ["nb", "en"]
    assert [fn.config.input_files for _, fn in inputs.groups] == [[a], [b]]
    assert not inputs.input_fn.config.is_training and inputs.input_fn.config.input_files == [a, b]
    caplog.set_level(logging.WARNING, logger="absl")
    inputs = evaluation_inputs(sources, SHAPE, 1, max(record_checks.records_in(a),
                                                      record_checks.records_in(b)) + 1,
                               _read(a, b))
    assert inputs.groups == ()  # neither holds a batch: the overall metrics only
    assert sum("fewer than one batch" in r.getMessage() for r in caplog.records) == 2


def test_buckets_and_a_new_seed_change_only_what_they_name(records):
    a, b = records["static"]
    inputs = evaluation_inputs(sources_of("nb=%s,en=%s" % (a, b), "--eval_input_file"), SHAPE,
                               1, 1, _read(a, b))
    cut = bucketed(inputs, (16, 32))
    for fn in [cut.input_fn] + [fn for _, fn in cut.groups]:
        assert fn.config.length_buckets == (16, 32) and not fn.config.bucket_tags
    assert [fn.config.input_files for _, fn in cut.groups] == [[a], [b]]
    assert bucketed(inputs, (16, 32), tags=True).input_fn.config.bucket_tags
    again = reseeded(inputs, 7)
    assert again.input_fn.config.seed == 7 and again.notes == inputs.notes
    assert again.input_fn.config.input_files == inputs.input_fn.config.input_files
