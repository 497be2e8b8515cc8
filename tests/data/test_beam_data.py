"""The data builder as an Apache Beam pipeline (--runner): the local sharded mode's records, byte
for byte, on the DirectRunner in one process and with worker processes; dedup; resuming; bad
flags. Runs where Beam is installed (`make test-beam`)."""

import json
import os
import re
import subprocess
import sys

import pytest

from helpers import REPO, build_output, gzip_cut_unseen
from norbert.data import sharded
from norbert.data.builder import create_pretraining_data
from norbert.errors import NorbertError
from test_dedup import planted_corpus
import test_heldout

beam = pytest.importorskip("apache_beam")

SCRIPT = os.path.join(REPO, "scripts", "create_pretraining_data.py")
TWO_PROCESSES = "direct_num_workers=2,direct_running_mode=multi_processing"


@pytest.fixture(scope="module")
def planted(corpus_paths, tmp_path_factory):
    return planted_corpus(tmp_path_factory.mktemp("planted"), corpus_paths)


def _settings(inputs, vocab, **changes):
    settings = dict(input_file=",".join(inputs), vocab_file=vocab, dupe_factor=2,
                    num_output_shards=4, progress=False, dedup="exact")
    settings.update(changes)
    return settings


def _script_on_two_processes(settings, tmp_path):
    """create_pretraining_data.py with ``settings`` as flags, on the DirectRunner's two worker
    processes, with ``tmp_path`` as its temporary folder (where the workers' output goes)."""
    flags = ["--%s=%s" % kv for kv in settings.items()]
    return subprocess.run(
        [sys.executable, SCRIPT, "--runner=DirectRunner",
         "--beam_pipeline_options=" + TWO_PROCESSES] + flags,
        capture_output=True, text=True, timeout=300, env=dict(os.environ, TMPDIR=str(tmp_path)))


def test_beam_writes_the_local_sharded_modes_records(planted, uncased_vocab_path, tmp_path):
    inputs, _, planted_copies = planted
    out = tmp_path / "out"
    settings = _settings(inputs, uncased_vocab_path, output_file=str(out / "train.tfrecord"))
    local = create_pretraining_data(num_workers=2, **settings)
    expected = build_output(out)
    os.rename(str(out), str(tmp_path / "local"))
    in_process = create_pretraining_data(runner="DirectRunner", **settings)
    assert build_output(out) == expected
    os.rename(str(out), str(tmp_path / "in_process"))
    # The command line, with two worker processes.
    result = _script_on_two_processes(settings, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert build_output(out) == expected
    assert len(expected) == 4 + 4 + 1  # shards, their sidecars, the set's sidecar
    for summary in (local, in_process):
        assert summary.corpus.duplicates == planted_copies
        assert summary.instances == sum(summary.records_per_file) > 1000


def test_beam_writes_the_local_modes_chunk_records(corpus_paths, uncased_vocab_path, tmp_path):
    # --pairing=dynamic: chunks, paired when read; the same shard code on Beam.
    built = {}
    out = tmp_path / "out"  # one path for both: the sidecars name the output files
    settings = _settings(corpus_paths[:1], uncased_vocab_path, dedup="none",
                         num_output_shards=2, pairing="dynamic",
                         output_file=str(out / "train.tfrecord"))
    for name, how in (("local", dict(num_workers=2)), ("beam", dict(runner="DirectRunner"))):
        summary = create_pretraining_data(**settings, **how)
        assert summary.instances > 500 and summary.masked_tokens == 0
        built[name] = build_output(out)
        os.rename(str(out), str(tmp_path / name))
    assert built["beam"] == built["local"] and len(built["local"]) == 2 + 2 + 1
    meta = json.loads(built["local"]["train.tfrecord.meta.json"])
    assert meta["settings"]["pairing"] == "dynamic" and "sentence_starts" in meta["features"]


def test_beam_holds_out_the_documents_the_other_modes_hold_out(planted, uncased_vocab_path,
                                                               tmp_path):
    """--heldout_documents on Beam: the local sharded mode's files (held-out ones too), the
    reference-exact mode's held-out records, and no held-out text in the training records."""
    inputs = planted[0]
    out = tmp_path / "out"
    settings = _settings(inputs, uncased_vocab_path, output_file=str(out / "train.tfrecord"),
                         heldout_documents=test_heldout.N,
                         heldout_output_file=str(out / "heldout.tfrecord"))
    local = create_pretraining_data(num_workers=2, **settings)
    expected = build_output(out)
    os.rename(str(out), str(tmp_path / "local"))
    summary = create_pretraining_data(runner="DirectRunner", **settings)
    assert build_output(out) == expected and summary.heldout_documents == test_heldout.N
    assert summary.corpus.documents == local.corpus.documents
    settings.update(dedup="none", num_output_shards=None,
                    output_file=str(tmp_path / "reference" / "train.tfrecord"))
    create_pretraining_data(**settings)  # its held-out file replaces Beam's
    assert (out / "heldout.tfrecord").read_bytes() == expected["heldout.tfrecord"]
    chosen, held_only, _ = test_heldout.held_out_grams(inputs, uncased_vocab_path)
    assert len(chosen) == test_heldout.N and held_only
    assert not test_heldout.training_grams(str(out)) & held_only


def test_beam_keeps_complete_shards_and_rebuilds_the_rest(corpus_paths, uncased_vocab_path,
                                                          tmp_path):
    out = tmp_path / "train.tfrecord"
    settings = _settings(corpus_paths, uncased_vocab_path, output_file=str(out))
    create_pretraining_data(num_workers=1, **settings)
    expected = build_output(tmp_path)
    shard = "train.tfrecord-%05d-of-00004"
    os.remove(str(tmp_path / (shard % 1)))  # lost
    with open(str(tmp_path / (shard % 2)), "r+b") as f:  # cut short under its final name
        f.truncate(1000)
    summary = create_pretraining_data(runner="DirectRunner", **settings)
    assert summary.shards_skipped == 2
    assert build_output(tmp_path) == expected


def test_a_failed_pipeline_leaves_none_of_its_shards(uncased_vocab_path, tmp_path, monkeypatch):
    """Bad input met in one bundle fails the pipeline after another bundle finished its shard:
    the launcher removes that shard, as the local mode does."""
    import threading

    sample = os.path.join(REPO, "examples", "sample_text.txt")
    # Cut where the plan cannot see it (its own slice: shard 1); the read meets it.
    (tmp_path / "cut.txt.gz").write_bytes(gzip_cut_unseen(open(sample, "rb").read()))
    out = tmp_path / "out"
    settings = dict(input_file=sample + "," + str(tmp_path / "cut.txt.gz"),
                    vocab_file=uncased_vocab_path, num_output_shards=2, progress=False,
                    output_file=str(out / "train.tfrecord"), runner="DirectRunner",
                    beam_pipeline_options="direct_num_workers=2,"
                                          "direct_running_mode=multi_threading")
    good = str(out / "train.tfrecord-00000-of-00002")
    build_shard = sharded.build_shard
    finished = threading.Event()
    seen = {}

    def the_good_shard_first(job, progress=None):
        # The bad shard starts once the good one, in another bundle (thread), is complete.
        if job.index == 1:
            finished.wait(timeout=120)
            seen["complete before the error"] = os.path.exists(good) and os.path.exists(
                good + ".meta.json")
        meta = build_shard(job, progress)
        finished.set()
        return meta

    monkeypatch.setattr(sharded, "build_shard", the_good_shard_first)
    with pytest.raises(Exception, match="cut.txt.gz is truncated"):
        create_pretraining_data(**settings)
    assert seen == {"complete before the error": True}
    assert not out.exists() or os.listdir(str(out)) == []


@pytest.mark.parametrize("name, contents, message", [
    ("cut.txt.gz", None, "cut.txt.gz is truncated (the gzip stream ends early): copy or"),
    ("bad.jsonl", b'{"text": "w1 w2."}\n{"body": "w3"}\n',
     'bad.jsonl: the line at byte 19 is not a JSON object with a "text" field: give one'),
])
def test_bad_input_met_in_a_worker_process_is_one_line(name, contents, message,
                                                       uncased_vocab_path, tmp_path):
    """Bad input that only reading meets, in one of two worker processes: exit 2 and one line
    naming the file, as in one process; no traceback; none of the run's shards left."""
    sample = os.path.join(REPO, "examples", "sample_text.txt")
    if contents is None:
        contents = gzip_cut_unseen(open(sample, "rb").read())
    (tmp_path / name).write_bytes(contents)
    out = tmp_path / "out"
    settings = dict(input_file=sample + "," + str(tmp_path / name), num_output_shards=2,
                    vocab_file=uncased_vocab_path, progress=False,
                    output_file=str(out / "train.tfrecord"))
    result = _script_on_two_processes(settings, tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "NorbertError" not in result.stderr
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == lines[-1:], result.stderr[-2000:]
    assert not [line for line in lines if re.match(r"E\d{4} ", line)]  # logged errors
    assert errors[0].startswith("error: %s: " % (tmp_path / name)) or errors[0].startswith(
        "error: %s is " % (tmp_path / name))
    assert message in errors[0] and errors[0].endswith(("again", "--text_field"))
    assert not out.exists() or os.listdir(str(out)) == []


def test_dataflows_options_reach_the_pipeline(corpus_paths, uncased_vocab_path, tmp_path,
                                              monkeypatch):
    from apache_beam.options.pipeline_options import (GoogleCloudOptions, SetupOptions,
                                                      StandardOptions, WorkerOptions)

    class Reached(Exception):
        pass

    def pipeline(options):
        raise Reached(options)

    monkeypatch.setattr(beam, "Pipeline", pipeline)
    with pytest.raises(Reached) as reached:
        create_pretraining_data(
            runner="DataflowRunner",
            beam_pipeline_options="project=P,region=europe-north1,temp_location=gs://b/tmp,"
                                  "num_workers=50,setup_file=./setup.py",
            **_settings(corpus_paths[:1], uncased_vocab_path, dedup="none",
                        output_file=str(tmp_path / "train.tfrecord")))
    options = reached.value.args[0]
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    cloud = options.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region, cloud.temp_location) == ("P", "europe-north1",
                                                                  "gs://b/tmp")
    assert options.view_as(WorkerOptions).num_workers == 50
    assert options.view_as(SetupOptions).setup_file == "./setup.py"


@pytest.mark.parametrize("changes, message", [
    # Called with keywords: the errors name them as keywords (the command line's name flags).
    (dict(runner="DirectRunner", num_output_shards=None), "^runner= needs num_output_shards:"),
    (dict(runner="DirectRunner", num_workers=2), "^num_workers= is for building on this"),
    (dict(runner="DirectRunner", beam_pipeline_options="num_wrokers=3"),
     "Beam has no option 'num_wrokers'"),
    (dict(runner="NoSuchRunner"), "^runner=NoSuchRunner"),
])
def test_bad_beam_settings_are_one_line_errors(corpus_paths, uncased_vocab_path, tmp_path,
                                               changes, message):
    settings = _settings(corpus_paths[:1], uncased_vocab_path,
                         output_file=str(tmp_path / "out" / "train.tfrecord"))
    settings.update(changes)
    with pytest.raises(NorbertError, match=message) as error:
        create_pretraining_data(**settings)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_a_dask_cluster_of_two_processes_writes_the_same_records(planted, uncased_vocab_path,
                                                                 tmp_path, dask_cluster):
    """Beam's Dask runner on a local dask.distributed cluster: a real multi-process cluster."""
    import dask.distributed

    inputs, _, planted_copies = planted
    out = tmp_path / "out"
    settings = _settings(inputs, uncased_vocab_path, output_file=str(out / "train.tfrecord"))
    create_pretraining_data(num_workers=1, **settings)
    expected = build_output(out)
    os.rename(str(out), str(tmp_path / "local"))
    summary = create_pretraining_data(
        runner="apache_beam.runners.dask.dask_runner.DaskRunner",
        beam_pipeline_options="dask_client_address=" + dask_cluster.scheduler_address,
        **settings)
    # The shards were built in the cluster's processes: each worker that built one holds the
    # tokenizer that sharded.build_shard loaded there.
    built_in = dask.distributed.default_client().run(lambda: bool(sharded._TOOLS))
    assert len(built_in) == 2 and any(built_in.values()), built_in
    assert summary.corpus.duplicates == planted_copies
    assert build_output(out) == expected


def hard_inputs(folder, corpus_paths):
    """Generated inputs built to break slice boundaries, between the given corpora: CRLF,
    multi-byte UTF-8, blank lines of multi-byte whitespace, no final newline, no blank line,
    an empty file, documents running on across files, .gz, JSON lines, Parquet."""
    import gzip
    import random

    rng = random.Random(5)
    words = open(corpus_paths[0], encoding="utf-8").read().split()[:3000]

    def documents(n, newline="\n", blank="\n"):
        docs = [newline.join(" ".join(rng.choice(words) for _ in range(rng.randint(3, 30)))
                             + " é€😀" for _ in range(rng.randint(1, 40))) for _ in range(n)]
        return (newline + blank).join(docs)

    folder.mkdir()
    files = {"a.txt": documents(60, "\r\n", "\u3000\r\n").encode("utf-8"),  # no final newline
             "b.txt": b"",
             "c.txt": documents(1, "\n").encode("utf-8"),  # no blank line: one long document
             "d.txt.gz": gzip.compress(documents(50).encode("utf-8")),
             "e.jsonl": "".join(json.dumps({"text": " ".join(rng.choice(words)
                                                             for _ in range(80))}) + "\n"
                                for _ in range(40)).encode("utf-8")}
    paths = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths.append(str(folder / name))
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    texts = [documents(1, " ") for _ in range(30)]
    pq.write_table(pa.table({"text": pa.array(texts)}), str(folder / "f.parquet"),
                   row_group_size=4)
    return [corpus_paths[0]] + paths[:3] + [str(folder / "f.parquet")] + paths[3:] + list(
        corpus_paths[1:])


def test_two_processes_on_beam_and_locally_write_the_same_bytes_on_hard_inputs(
        corpus_paths, uncased_vocab_path, tmp_path):
    inputs = hard_inputs(tmp_path / "in", corpus_paths)
    out = tmp_path / "out"
    settings = _settings(inputs, uncased_vocab_path, output_file=str(out / "train.tfrecord"),
                         num_output_shards=7, block_mb=0.05)
    local = create_pretraining_data(num_workers=2, **settings)
    expected = build_output(out)
    os.rename(str(out), str(tmp_path / "local"))
    result = _script_on_two_processes(settings, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert build_output(out) == expected and len(expected) == 7 + 7 + 1
    assert local.corpus.documents > 300 and min(local.records_per_file) > 0
    # The workers' INFO lines are off, and the log says so.
    assert "default_sdk_harness_log_level=INFO shows their INFO lines" in result.stderr
    assert "Control channel established" not in result.stderr


def test_a_default_build_prints_none_of_the_workers_info_lines(uncased_vocab_path, tmp_path):
    """Two worker processes on the shipped sample: their INFO lines (Beam's worker start-up
    logs one before it reads the level) go to the log file the launcher names, not here."""
    settings = dict(input_file=os.path.join(REPO, "examples", "sample_text.txt"),
                    vocab_file=uncased_vocab_path, num_output_shards=2, progress=False,
                    output_file=str(tmp_path / "out" / "train.tfrecord"))
    result = _script_on_two_processes(settings, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    info = [line for line in lines if line.startswith("INFO:") or "severity: INFO" in line]
    assert not info, info
    named = re.search(r"what the worker processes print themselves goes to (\S+\.log)\)",
                      result.stderr)
    assert named, result.stderr[-2000:]
    assert os.path.dirname(named.group(1)) == str(tmp_path)
    worker_log = open(named.group(1), encoding="utf-8").read()
    assert worker_log.count("INFO:__main__:Logging handler created.") == 2  # one per process
    assert "default_sdk_harness_log_level=INFO shows their INFO lines" in result.stderr


def test_beam_rebuilds_the_first_planners_shards(corpus_paths, uncased_vocab_path, tmp_path,
                                                 caplog):
    from test_sharded_data import as_first_planner

    out = tmp_path / "train.tfrecord"
    settings = _settings(corpus_paths, uncased_vocab_path, output_file=str(out))
    create_pretraining_data(runner="DirectRunner", **settings)
    expected = build_output(tmp_path)
    as_first_planner(tmp_path)
    with caplog.at_level("INFO"):
        summary = create_pretraining_data(runner="DirectRunner", **settings)
    assert summary.shards_skipped == 0 and build_output(tmp_path) == expected
    assert any("were cut by input planner 1" in r.getMessage() for r in caplog.records)


def test_plan_only_on_beam_prints_the_local_plan_and_runs_nothing(corpus_paths,
                                                                  uncased_vocab_path, tmp_path,
                                                                  monkeypatch):
    settings = _settings(corpus_paths, uncased_vocab_path, num_output_shards=5, plan_only=True,
                         output_file=str(tmp_path / "out" / "train.tfrecord"))
    local = create_pretraining_data(**settings)
    monkeypatch.setattr(beam, "Pipeline", None)  # no pipeline may be made
    on_beam = create_pretraining_data(runner="DirectRunner", **settings)
    assert on_beam.plan == local.plan and on_beam.line() == local.plan
    assert len(local.plan.splitlines()) == 1 + 5 and on_beam.instances == 0
    assert not (tmp_path / "out").exists()
