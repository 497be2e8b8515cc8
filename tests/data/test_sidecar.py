import json
import os

import pytest

from norbert.data import sidecar
from norbert.data.config import DataConfig, DataSummary
from norbert.data.documents import CorpusStats
from norbert.errors import NorbertError
from norbert.tokenization.options import TokenizerOptions

GOOGLE = TokenizerOptions()


def _config(**flags):
    return DataConfig(input_file="in.txt", output_file="out.tfrecord", vocab_file="vocab.txt",
                      **flags)


def test_written_atomically_as_json(tmp_path):
    path = sidecar.path_for(str(tmp_path / "out.tfrecord"))
    assert path.endswith("out.tfrecord.meta.json")
    sidecar.write(path, {"a": 1, "b": [1, 2]})
    assert json.loads(open(path, encoding="utf-8").read()) == {"a": 1, "b": [1, 2]}
    assert os.listdir(str(tmp_path)) == ["out.tfrecord.meta.json"]


def test_counts_round_trip_through_the_sidecar():
    summary = DataSummary(corpus=CorpusStats(files=2, lines=10, bad_lines=1, documents=3,
                                             sentences=8, tokens=90),
                          instances=5, instance_tokens=70, masked_tokens=11, random_next=2)
    total = DataSummary(corpus=CorpusStats())
    sidecar.add_counts(total, sidecar.counts_of(summary))
    sidecar.add_counts(total, sidecar.counts_of(summary))
    assert (total.instances, total.masked_tokens, total.corpus.documents, total.corpus.tokens) \
        == (10, 22, 6, 180)


def test_built_from_config_and_summary():
    config = _config(max_seq_length=64, max_predictions_per_seq=10)
    summary = DataSummary(corpus=CorpusStats(documents=4), instances=7)
    meta = sidecar.build(config, GOOGLE, ["in.txt"], ["out.tfrecord"], "out.tfrecord",
                         "ab" * 32, 99, summary, 7)
    assert meta["format"] == sidecar.FORMAT and meta["instances_in_file"] == 7
    assert meta["settings"]["max_seq_length"] == 64 and meta["settings"]["vocab_size"] == 99
    assert meta["features"]["masked_lm_ids"]["length"] == 10
    assert meta["counts"]["documents"] == 4
    template = sidecar.build(config, GOOGLE, ["in.txt"], ["out.tfrecord"], "out.tfrecord",
                             "ab" * 32, 99)
    assert "counts" not in template and "instances_in_file" not in template


def test_tokenizer_options_recorded_and_read_back():
    options = TokenizerOptions(strip_accents=False, tokenize_chinese_chars=False,
                               never_split=("<url>",))
    meta = sidecar.build(_config(), options, ["in.txt"], ["out.tfrecord"], "out.tfrecord",
                         "ab" * 32, 99)
    settings = json.loads(json.dumps(meta))["settings"]  # as read back from the file
    assert (settings["strip_accents"], settings["tokenize_chinese_chars"],
            settings["never_split"]) == (False, False, ["<url>"])
    assert TokenizerOptions.from_settings(settings) == options
    assert TokenizerOptions.from_settings({"do_lower_case": True}) == GOOGLE  # older sidecars


def test_a_shard_finds_its_own_or_its_sets_sidecar(tmp_path):
    base = str(tmp_path / "train.tfrecord")
    shard = base + "-00001-of-00004"
    assert sidecar.read(shard) is None
    sidecar.write(sidecar.path_for(base), {"settings": {"max_seq_length": 32}})
    assert sidecar.read(shard)["settings"]["max_seq_length"] == 32
    sidecar.write(sidecar.path_for(shard), {"settings": {"max_seq_length": 64}})
    assert sidecar.read(shard)["settings"]["max_seq_length"] == 64


def test_broken_sidecar_is_an_error_naming_it(tmp_path):
    record = str(tmp_path / "train.tfrecord")
    with open(sidecar.path_for(record), "w") as f:
        f.write("{not json")
    with pytest.raises(NorbertError, match=r"train.tfrecord.meta.json is not valid JSON"):
        sidecar.read(record)


def test_same_shard_compares_identity_and_needs_counts():
    config = _config(num_output_shards=2)
    template = sidecar.build(config, GOOGLE, ["in.txt"], config.output_files,
                             config.output_files[0], "ab" * 32, 99)
    template["shard_index"] = 0
    done = dict(template, counts={"instances": 3}, build_seconds=1.5)
    assert sidecar.same_shard(done, template)
    assert not sidecar.same_shard(template, template)  # no counts: the run did not finish
    other = sidecar.build(_config(num_output_shards=2, random_seed=1), GOOGLE, ["in.txt"],
                          config.output_files, config.output_files[0], "ab" * 32, 99)
    assert not sidecar.same_shard(dict(done, settings=other["settings"]), template)
    recased = sidecar.build(config, TokenizerOptions(strip_accents=False), ["in.txt"],
                            config.output_files, config.output_files[0], "ab" * 32, 99)
    assert not sidecar.same_shard(dict(done, settings=recased["settings"]), template)


def test_a_shard_cut_by_another_planner_is_another_shard_but_in_a_set_of_one():
    for shards, kept in ((2, False), (1, True)):
        config = _config(num_output_shards=shards)
        template = sidecar.build(config, GOOGLE, ["in.txt"], config.output_files,
                                 config.output_files[0], "ab" * 32, 99)
        template["settings"].update(num_output_shards=shards, planner=2)
        done = json.loads(json.dumps(dict(template, counts={"instances": 3})))
        assert sidecar.same_shard(done, template) and sidecar.planner_of(done) == 2
        del done["settings"]["planner"]  # as the first planner's shards have it
        assert sidecar.planner_of(done) == 1
        assert sidecar.same_shard(done, template) is kept
        assert sidecar.cut_by_other_planner(done, template)
        done["settings"]["random_seed"] = 1  # and other settings: not a planner's change
        assert not sidecar.same_shard(done, template)
        assert not sidecar.cut_by_other_planner(done, template)


def test_a_shards_sidecar_from_template_to_built_and_its_own_counts():
    config = _config(num_output_shards=2)
    template = sidecar.build(config, GOOGLE, ["in.txt"], config.output_files,
                             config.output_base, "ab" * 32, 99)
    shards = sidecar.shard_template(template, 1000, 2, 8.0, 3)
    assert shards["input_bytes"] == 1000 and sidecar.planner_of(shards) == 3
    assert sidecar.settings_of(shards)["num_output_shards"] == 2
    assert "planner" not in template["settings"]  # the build's template is left as it was
    path = os.path.join("data", config.output_files[1])
    before = sidecar.for_shard(shards, path, 1)
    assert before["shard_index"] == 1 and sidecar.records_in_file(before, path) is None
    summary = DataSummary(corpus=CorpusStats(documents=2), instances=6)
    built = sidecar.built_shard(before, 1.23456, summary, 4096)
    assert sidecar.same_shard(built, before) and built["build_seconds"] == 1.235
    assert sidecar.records_in_file(built, path) == 6
    assert sidecar.bytes_in_file(built, path) == 4096
    assert built["counts"]["documents"] == 2
    # Another file's sidecar (a shard set's shared one) does not count this file.
    assert sidecar.records_in_file(built, config.output_files[0]) is None
    assert sidecar.bytes_in_file(None, path) is None
    assert sidecar.records_in_file(dict(built, instances_in_file=True), path) is None
    # Settings read flat where a sidecar has no settings section.
    assert sidecar.settings_of({"max_seq_length": 32}) == {"max_seq_length": 32}
