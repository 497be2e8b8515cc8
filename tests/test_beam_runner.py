"""The Beam settings shared by the data tools: options as Beam's flags, a missing Beam as a
one-line error, and the checks made before any work. (The pipelines: tests/data/test_beam_data.py,
tests/vocab_building/test_beam_counting.py.)"""

import os
import subprocess
import sys

import pytest

from helpers import REPO
from norbert.beam_runner import (_WORKER_LOGGER, BeamConfig, _child_stderr_to_file,
                                 _errors_held_back, import_beam, option_flags, worker_error)
from norbert.errors import NorbertError


def test_options_become_beams_flags():
    assert option_flags("project=P, region=R,temp_location=gs://b/t,use_public_ips") == [
        "--project=P", "--region=R", "--temp_location=gs://b/t", "--use_public_ips"]
    assert option_flags("") == []
    for bad in ("--project=P", "=x", "two words=1"):
        with pytest.raises(NorbertError, match="--beam_pipeline_options: .* is not key=value"):
            option_flags(bad)


def test_options_need_a_runner():
    with pytest.raises(NorbertError, match="--beam_pipeline_options needs --runner"):
        BeamConfig(beam_pipeline_options="project=P")
    with pytest.raises(NorbertError, match="--runner is empty"):
        BeamConfig(runner=" ")
    assert not BeamConfig().enabled and BeamConfig("DirectRunner").enabled


def test_a_missing_beam_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import apache_beam -> ImportError
    with pytest.raises(NorbertError, match=r"pip install 'norbert\[beam\]'"):
        import_beam()


@pytest.mark.parametrize("script", ["create_pretraining_data", "build_vocab"])
def test_the_command_without_beam_is_one_line_and_writes_nothing(script, corpus_paths,
                                                                 uncased_vocab_path, tmp_path):
    # A Python that cannot import Beam even where it is installed: a stub package that fails.
    stub = tmp_path / "stub" / "apache_beam"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('no Beam here')\n")
    out = tmp_path / "out"
    flags = ["--input_file=" + corpus_paths[0], "--runner=DirectRunner"]
    if script == "build_vocab":
        flags += ["--output_file=%s/vocab.txt" % out, "--vocab_size=500"]
    else:
        flags += ["--output_file=%s/train.tfrecord" % out, "--vocab_file=" + uncased_vocab_path,
                  "--num_output_shards=2"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "stub"), REPO]))
    done = subprocess.run([sys.executable, os.path.join(REPO, "scripts", script + ".py")]
                          + flags, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: --runner needs Apache Beam"), done.stderr[-1000:]
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_workers_log_warnings_only_unless_told():
    pytest.importorskip("apache_beam")
    from norbert.beam_runner import pipeline_options

    def level(options):
        return pipeline_options(BeamConfig("DirectRunner", options)).get_all_options()[
            "default_sdk_harness_log_level"]

    assert level("") == "WARNING"
    assert level("default_sdk_harness_log_level=DEBUG,direct_num_workers=2") == "DEBUG"


def test_processes_started_inside_write_their_stderr_to_the_file_and_this_one_does_not(
        capfd, monkeypatch, tmp_path):
    # The DirectRunner's worker processes inherit the launcher's stderr: inside, theirs goes to
    # the file, while this process's own writes and log lines stay on its stderr.
    import logging
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(handler)
    try:
        with _child_stderr_to_file() as path:
            subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('child\\n')"],
                           check=True)
            sys.stderr.write("own write\n")
            logging.getLogger("norbert.test").warning("own log line")
    finally:
        logging.getLogger().removeHandler(handler)
    sys.stderr.write("after\n")
    assert os.path.dirname(path) == str(tmp_path)
    with open(path) as f:
        assert f.read() == "child\n"
    err = capfd.readouterr().err
    assert "own write\n" in err and "own log line" in err and "after\n" in err
    assert "child" not in err
    assert handler.stream is sys.stderr


def test_a_norbert_error_in_a_worker_is_taken_from_the_runners_error():
    # The form of the DirectRunner's error for a worker process's failure (apache-beam 2.x):
    # the worker's traceback as text, its first NorbertError line the original one.
    text = ("Traceback (most recent call last):\n"
            '  File "norbert/data/slices.py", line 398, in _jsonl\n'
            "norbert.errors.NorbertError: a.jsonl: the line at byte 7 is bad: fix it\n\n"
            "During handling of the above exception, another exception occurred:\n"
            "norbert.errors.NorbertError: a.jsonl: the line at byte 7 is bad: fix it "
            "[while running 'build']\n")
    error = worker_error(RuntimeError(text))
    assert isinstance(error, NorbertError)
    assert str(error) == "a.jsonl: the line at byte 7 is bad: fix it"
    assert str(worker_error(Exception(text.splitlines()[-1]))).endswith("fix it")
    own = NorbertError("x")
    assert worker_error(own) is own
    for other in (RuntimeError("Traceback ...\nValueError: no"), KeyError("NorbertError: x"),
                  RuntimeError("norbert.errors.NorbertError: ")):
        assert worker_error(other) is None


def test_workers_error_records_of_a_norbert_error_are_held_back_until_the_end(caplog):
    import logging

    logger = logging.getLogger(_WORKER_LOGGER)
    with caplog.at_level("INFO"):
        with _errors_held_back() as held:
            logger.error("Worker: message: \"norbert.errors.NorbertError: a.txt is bad\"")
            logger.warning("Worker: message: \"norbert.errors.NorbertError: a warning\"")
            logger.error("Worker: message: \"ValueError: other\"")
            assert [r.getMessage()[-10:] for r in caplog.records] == ["a warning\"", "or: other\""]
            assert len(held) == 1
        assert caplog.records[-1].getMessage().endswith("a.txt is bad\"")  # logged at the end
        with _errors_held_back() as held:
            logger.error("Worker: \"norbert.errors.NorbertError: b.txt is bad\"")
            held.clear()  # as when the failure became the one-line error
    assert not [r for r in caplog.records if "b.txt" in r.getMessage()]
    assert not logger.filters
