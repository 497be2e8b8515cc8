"""scripts/build_vocab.py end to end in a subprocess: flags in, vocab.txt out, errors one line."""

import gzip
import os
import subprocess
import sys

import pytest

from norbert import FullTokenizer, load_vocab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "build_vocab.py")

TEXT = """Reven løper over isen, og bjørnen sover i skogen.
Bjørnen våkner når våren kommer; reven løper videre.

The fox runs over the ice while the bear sleeps in the forest.
The bear wakes when spring comes, and the fox runs on.
"""


def run(*flags):
    return subprocess.run(
        [sys.executable, SCRIPT] + list(flags), cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, universal_newlines=True, timeout=120,
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    # --progress is on by default: its log lines may come before the error.
    lines = [line for line in result.stderr.strip().splitlines() if " progress.py:" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def corpus(tmp_path):
    plain = tmp_path / "a.txt"
    plain.write_text(TEXT * 3, encoding="utf-8")
    packed = tmp_path / "b.txt.gz"
    packed.write_bytes(gzip.compress(TEXT.encode("utf-8")))
    return "%s,%s" % (plain, tmp_path / "*.gz")


def test_builds_a_vocab_the_tokenizer_uses(tmp_path, corpus):
    out = tmp_path / "vocab.txt"
    result = run("--input_file=" + corpus, "--output_file=%s" % out, "--vocab_size=150",
                 "--num_unused=4", "--do_lower_case=False", "--min_frequency=1",
                 "--num_workers=2")
    assert result.returncode == 0, result.stderr
    assert "read 2 files" in result.stdout and "wrote 150 tokens" in result.stdout
    vocab = load_vocab(str(out))
    assert len(vocab) == 150
    assert list(vocab)[:9] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
        "[unused%d]" % i for i in range(4)]
    tok = FullTokenizer(str(out), do_lower_case=False)
    for line in TEXT.splitlines():
        assert "[UNK]" not in tok.tokenize(line)
    assert tok.tokenize("The fox")[:1] == ["The"]


def test_fill_unused_of_reports_the_shortening(tmp_path, corpus, make_vocab):
    letters = "abcdefghijklmnopqrstuvwxyzæøå"
    old = make_vocab(["[unused0]", "[unused1]"] + list(letters + ".,;") +
                     ["##" + c for c in letters], name="old.txt")
    out = tmp_path / "new.txt"
    result = run("--input_file=" + corpus, "--output_file=%s" % out, "--fill_unused_of=" + old)
    assert result.returncode == 0, result.stderr
    assert "filled 2 [unusedN] slots" in result.stdout and "% shorter" in result.stdout
    assert "deprecated" not in result.stderr
    new = load_vocab(str(out))
    assert len(new) == len(load_vocab(old)) and "[unused0]" not in new and "the" in new
    # The old flag still works, with one line saying the new name.
    again = tmp_path / "again.txt"
    result = run("--input_file=" + corpus, "--output_file=%s" % again, "--extend_vocab=" + old)
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "deprecated" in line]
    assert warned == ["warning: --extend_vocab is deprecated, use --fill_unused_of, which "
                      "fills the [unusedN] slots (extend_vocab.py grows a vocab into a "
                      "checkpoint)"]
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.parametrize(
    "make_flags, fragments",
    [
        (lambda d: ["--output_file=%s/v.txt" % d], ["--input_file is required"]),
        (lambda d: ["--input_file=%s/missing*.txt" % d, "--output_file=%s/v.txt" % d],
         ["--input_file", "no files match"]),
        (lambda d: ["--input_file=%s/empty.txt" % d, "--output_file=%s/v.txt" % d],
         ["no words in --input_file"]),
        (lambda d: ["--input_file=%s/a.txt" % d, "--output_file=%s/v.txt" % d,
                    "--vocab_size=30"], ["--vocab_size=30 is too small"]),
        (lambda d: ["--input_file=%s/bad.gz" % d, "--output_file=%s/v.txt" % d],
         ["bad.gz is not a valid .gz file"]),
        (lambda d: ["--input_file=%s/a.txt" % d, "--output_file=%s/v.txt" % d,
                    "--character_coverage=2"], ["--character_coverage"]),
        (lambda d: ["--input_file=%s/a.txt" % d, "--output_file=%s/a.txt/v.txt" % d],
         ["a.txt is a file, not a folder"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, make_flags, fragments):
    (tmp_path / "a.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    (tmp_path / "bad.gz").write_bytes(b"this is not gzip")
    result = run(*make_flags(tmp_path))
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "v.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "bad.gz", "empty.txt"]
