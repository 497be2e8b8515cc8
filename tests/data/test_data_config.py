"""The data build's settings (``norbert.data.config.DataConfig``) check themselves, naming the
flag and the fix, and resolve what depends on other settings once; no TensorFlow, no files."""

import pytest

from norbert.data.config import DataConfig
from norbert.data.features import DYNAMIC, MLM, STATIC
from norbert.errors import NorbertError

FILES = dict(input_file="in.txt", output_file="out.tfrecord", vocab_file="vocab.txt")


@pytest.mark.parametrize("changes, message", [
    (dict(input_file=""), "--input_file is required"),
    (dict(output_file=""), "--output_file is required"),
    (dict(vocab_file=""), "--vocab_file is required"),
    (dict(masking="later"), "--masking=later: use one of static, dynamic"),
    (dict(pairing="later"), "--pairing=later: use one of static, dynamic"),
    (dict(dedup="near"), "--dedup=near: use one of none, exact"),
    (dict(objective="clm"), "--objective=clm: use one of"),
    (dict(objective=MLM, pairing=DYNAMIC),
     "--pairing=dynamic makes pairs for --objective=mlm_nsp: with --objective=mlm leave"),
    (dict(objective=MLM, short_seq_prob=0.3), "--short_seq_prob=0.3 cuts --objective=mlm_nsp's"),
    (dict(cross_documents=True), "--cross_documents packs records of --objective=mlm"),
    (dict(whole_sentences=True), "--whole_sentences packs records of --objective=mlm"),
    (dict(text_field=""), "--text_field is empty: name the JSON key or Parquet column"),
    (dict(dupe_factor=0), r"--dupe_factor must be at least 1 \(got 0\)"),
    (dict(output_file=" , "), "--output_file is empty: give one or more files"),
    (dict(output_file="a.tfrecord,b.tfrecord,a.tfrecord"), "--output_file names a file twice"),
    (dict(num_workers=0), "--num_workers=0 must be at least 1"),
    (dict(num_output_shards=100000), "--num_output_shards=100000 must be between 1 and 99999"),
    (dict(block_mb=0.0), "--block_mb=0.0 must be positive"),
    (dict(output_file="a.tfrecord,b.tfrecord", num_workers=2),
     "--output_file names 2 files: with --num_workers or --num_output_shards give one name"),
    (dict(plan_only=True), "--plan_only prints the plan of a sharded or Beam build"),
    (dict(max_seq_length=16, max_predictions_per_seq=20),
     r"--max_predictions_per_seq \(20\) exceeds --max_seq_length \(16\)"),
    (dict(masked_lm_prob=1.5), "--masked_lm_prob must be between 0 and 1"),
    (dict(max_seq_length=2), "--max_seq_length must be at least 5"),
    (dict(heldout_documents=-1), "--heldout_documents=-1 must be at least 0"),
    (dict(heldout_documents=5), "--heldout_documents=5 needs --heldout_output_file"),
    (dict(heldout_output_file="held.tfrecord"),
     "--heldout_output_file=held.tfrecord needs --heldout_documents=N"),
    (dict(heldout_documents=5, heldout_output_file="a.tfrecord,b.tfrecord"),
     "--heldout_output_file=a.tfrecord,b.tfrecord names several files"),
    (dict(heldout_documents=5, heldout_output_file="out.tfrecord"),
     "--heldout_output_file=out.tfrecord is a training output file"),
    (dict(heldout_documents=5, heldout_output_file="out.tfrecord", num_output_shards=2),
     "--heldout_output_file=out.tfrecord is a training output file"),  # the shards' base
])
def test_bad_settings_name_their_flag(changes, message):
    with pytest.raises(NorbertError, match=message):
        DataConfig(**dict(FILES, **changes))


def test_settings_that_depend_on_others_are_resolved_once():
    assert DataConfig(**FILES).dupe_factor == 10  # Google's default for masks written now
    assert DataConfig(**FILES, masking=DYNAMIC).dupe_factor == 1  # masks drawn when read
    assert DataConfig(**FILES, dupe_factor=3, masking=DYNAMIC).dupe_factor == 3
    # Chunks paired at training time are masked there too.
    paired = DataConfig(**FILES, pairing=DYNAMIC)
    assert (paired.masking, paired.dynamic, paired.pairs_dynamic) == (DYNAMIC, True, True)
    assert DataConfig(**FILES).masking == STATIC
    held = DataConfig(**FILES, heldout_documents=3, heldout_output_file=" held.tfrecord ")
    assert held.heldout_output_file == "held.tfrecord"


def test_the_output_files_and_the_sharded_mode():
    assert DataConfig(**dict(FILES, output_file="a.tfrecord, b.tfrecord")).output_files == [
        "a.tfrecord", "b.tfrecord"]
    local = DataConfig(**FILES)
    assert not local.sharded and local.mode == "reference-exact"
    sharded = DataConfig(**FILES, num_output_shards=3, num_workers=2)
    assert sharded.sharded and (sharded.shards, sharded.workers) == (3, 2)
    assert sharded.output_base == "out.tfrecord"
    assert sharded.output_files == ["out.tfrecord-%05d-of-00003" % k for k in range(3)]
    assert DataConfig(**FILES, num_workers=2).shards == 2  # a shard per worker by default
