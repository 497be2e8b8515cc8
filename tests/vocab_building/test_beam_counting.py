"""The vocab builder's word counting as a Beam pipeline (--runner): the local counts exactly, and
so the same vocab.txt; settings that cannot work with a runner are one-line errors."""

import gzip
import os
import tempfile

import pytest

beam = pytest.importorskip("apache_beam")

from norbert import NorbertError, build_vocab  # noqa: E402
from norbert.beam_runner import BeamConfig  # noqa: E402
from norbert.vocab_building import beam_counting, word_counts  # noqa: E402

# Two worker processes on this machine: the tasks are pickled and counted apart, as on a cluster.
MULTI = "direct_num_workers=2,direct_running_mode=multi_processing"
DASK = "apache_beam.runners.dask.dask_runner.DaskRunner"


@pytest.fixture
def inputs(corpus_paths, tmp_path):
    """The shared corpora (about 1.2 MB) and the Norwegian one again as a .gz, last."""
    norwegian = [p for p in corpus_paths if "norwegian" in p][0]
    packed = tmp_path / "input" / "norwegian.txt.gz"
    packed.parent.mkdir()
    with open(norwegian, "rb") as f:
        packed.write_bytes(gzip.compress(f.read()))
    return list(corpus_paths) + [str(packed)]


def test_escaping_undoes_itself():
    for word in ["fox", "\\", "a\\tb", "\\n", "tab\there", "new\nline", "\\\t\\\n", "ø中\\"]:
        line = beam_counting._line((word, 3))
        assert "\n" not in line and line.count("\t") == 1
        key, n = line.rsplit("\t", 1)
        assert beam_counting._unescape(key) == word and n == "3"


def test_direct_runner_counts_and_vocab_equal_the_local_ones(inputs, tmp_path, monkeypatch,
                                                             tmp_path_factory):
    # The worker processes' own output goes to a log file in the temporary folder: this test's.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("workers_log")))
    expected, read = word_counts.count_words(inputs, True)
    out = tmp_path / "out"
    # Ranges of 100 kB: 14 tasks instead of the local counter's 4; the counts are the same.
    counts, beam_read = beam_counting.count_words(
        inputs, True, BeamConfig("DirectRunner", MULTI), str(out / "vocab.txt"),
        range_bytes=100_000)
    assert counts == expected and beam_read == read
    assert not out.exists()  # the temporary counts and the folder made for them are gone

    # The Chinese text's alphabet alone takes about 1,250 tokens at this coverage.
    settings = dict(input_file=",".join(inputs), vocab_size=3000, num_unused=0,
                    character_coverage=0.999, do_lower_case=False, progress=False)
    local = build_vocab(output_file=str(tmp_path / "local.txt"), **settings)
    piped = build_vocab(output_file=str(tmp_path / "beam.txt"), runner="DirectRunner",
                        beam_pipeline_options=MULTI, **settings)
    assert (tmp_path / "beam.txt").read_bytes() == (tmp_path / "local.txt").read_bytes()
    assert piped.learned == local.learned > 1000
    assert (piped.words, piped.lines, piped.bytes_read) == (local.words, local.lines,
                                                            local.bytes_read)
    assert sorted(os.listdir(tmp_path)) == ["beam.txt", "input", "local.txt"]


def test_max_input_bytes_is_planned_up_front_or_refused(inputs, tmp_path):
    near = str(tmp_path / "vocab.txt")
    plain = sum(os.path.getsize(p) for p in inputs[:-1])
    # A limit inside the plain files, and one that ends in the last file, a .gz.
    for limit in (700_000, plain + 50_000):
        expected = word_counts.count_words(inputs, True, max_bytes=limit)
        assert beam_counting.count_words(inputs, True, BeamConfig("DirectRunner"), near,
                                         max_bytes=limit, range_bytes=100_000) == expected
    # Past a .gz the next file's budget is known only once the .gz is read.
    packed_first = [inputs[-1]] + inputs[:-1]
    with pytest.raises(NorbertError, match=r"--max_input_bytes=1000 reaches past .*\.gz.*"
                                           r"--runner plans"):
        beam_counting.count_words(packed_first, True, BeamConfig("DirectRunner"), near,
                                  max_bytes=1000)
    assert os.listdir(tmp_path) == ["input"]


def test_num_workers_with_a_runner_is_an_error_naming_the_fix(inputs, tmp_path):
    with pytest.raises(NorbertError) as error:
        build_vocab(input_file=",".join(inputs), output_file=str(tmp_path / "v.txt"),
                    num_workers=2, runner="DirectRunner", progress=False)
    message = str(error.value)  # called with keywords: named as keywords
    assert "\n" not in message and message.startswith("num_workers=")
    assert "runner=" in message and "direct_num_workers=N" in message
    assert os.listdir(tmp_path) == ["input"]


def test_a_dask_cluster_of_two_processes_counts_the_same(inputs, tmp_path, dask_cluster):
    """Beam's Dask runner on a local dask.distributed cluster: a real multi-process cluster."""
    address = "dask_client_address=" + dask_cluster.scheduler_address
    counts, read = beam_counting.count_words(inputs, True, BeamConfig(DASK, address),
                                             str(tmp_path / "v.txt"), range_bytes=100_000)
    local_counts, local_read = word_counts.count_words(inputs, True)
    assert counts == local_counts and read == local_read
    assert os.listdir(str(tmp_path)) == ["input"]  # the temporary counts are gone
