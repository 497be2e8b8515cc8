"""scripts/vocab_report.py end to end in a subprocess: the text report, --json for scripts, and
the figures build_vocab prints of the vocab it wrote."""

import json
import os
import subprocess
import sys

from helpers import REPO, TEXT_DIR
from norbert.vocab_building.report import vocab_report

NORWEGIAN = os.path.join(TEXT_DIR, "norwegian.txt")
ENGLISH = os.path.join(TEXT_DIR, "english.txt")


def _run(script, *flags):
    done = subprocess.run([sys.executable, os.path.join(REPO, "scripts", script + ".py")]
                          + list(flags) + ["--progress=false"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done.stdout


def test_json_for_scripts(uncased_vocab_path):
    inputs = "%s,%s" % (NORWEGIAN, ENGLISH)
    out = json.loads(_run("vocab_report", "--vocab_file=" + uncased_vocab_path,
                          "--input_file=" + inputs, "--num_new_tokens=100,300", "--json"))
    expected = vocab_report(vocab_file=uncased_vocab_path, input_file=inputs,
                            num_new_tokens=("100", "300"), progress=False)
    assert out == json.loads(expected.json_text())
    assert list(out["files"]) == [NORWEGIAN, ENGLISH]
    for part in (out["files"][NORWEGIAN], out["files"][ENGLISH], out["overall"]):
        assert set(part) >= {"tokens_per_word", "split_word_share", "unk_share", "grown"}
        assert len(part["grown"]) == 2
    # Norwegian needs the new pieces; English, which the vocab was made for, hardly.
    assert out["files"][NORWEGIAN]["tokens_per_word"] > 1.5 > out["files"][ENGLISH][
        "tokens_per_word"]
    assert [g["num_new_tokens"] for g in out["growth"]] == [100, 300]


def test_text_report(uncased_vocab_path):
    out = _run("vocab_report", "--vocab_file=" + uncased_vocab_path,
               "--input_file=" + NORWEGIAN, "--num_new_tokens=50", "--top_words=3",
               "--strip_accents=false")
    report = vocab_report(vocab_file=uncased_vocab_path, input_file=NORWEGIAN,
                          num_new_tokens=("50",), top_words=3, strip_accents=False,
                          progress=False)
    assert out == report.summary() + "\n"
    assert "words split the most" in out and "grown by 50 (50 added" in out
    assert "overall" not in out  # one file: its figures are the overall ones


def test_build_vocab_prints_the_report_of_its_vocab(tmp_path):
    out = _run("build_vocab", "--input_file=" + ENGLISH, "--output_file=%s" % (
        tmp_path / "vocab.txt"), "--vocab_size=300", "--num_unused=0")
    report = vocab_report(vocab_file=str(tmp_path / "vocab.txt"), input_file=ENGLISH,
                          progress=False)
    figures = report.overall.now.lines()
    assert ("vocab report of the vocab written, on the text read: %s\n" % figures[0]) in out
    assert "\n  ".join(figures[1:]) in out
