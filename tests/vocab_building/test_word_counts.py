"""Counting the tokenizer's words: the same counts whatever the byte ranges, the workers, the
compression or the limit on bytes read."""

import collections
import gzip

from norbert.tokenization import text as textlib
from norbert.tokenization.options import TokenizerOptions
from norbert.vocab_building import word_counts
from small_text import TEXT, counts_of, write


# -- reading ----------------------------------------------------------------------------------


def test_counts_are_the_tokenizers_words(tmp_path):
    path = write(tmp_path, "a.txt", TEXT)
    for lower in (True, False):
        counts, stats = word_counts.count_words([path], lower)
        assert counts == counts_of(TEXT, lower)
        assert stats.lines == TEXT.count("\n") and stats.bytes_read == len(TEXT.encode())


def test_counts_do_not_depend_on_ranges_or_workers(tmp_path):
    text = TEXT + "\n\nno newline at the end"
    paths = [write(tmp_path, "a.txt", text), write(tmp_path, "b.txt.gz", TEXT),
             write(tmp_path, "c.txt", "x\r\ny\n\n")]
    expected = collections.Counter()
    for t in (text, TEXT, "x\r\ny\n\n"):
        expected.update(counts_of(t))
    for range_bytes in (1, 7, 64, 1 << 20):
        assert word_counts.count_words(paths, True, range_bytes=range_bytes)[0] == expected
    assert word_counts.count_words(paths, True, num_workers=2, range_bytes=50)[0] == expected


def test_max_bytes_reads_the_lines_that_start_before_it(tmp_path):
    lines = ["one two\n", "three\n", "four five\n", "six\n"]
    a = write(tmp_path, "a.txt", "".join(lines[:2]))
    b = write(tmp_path, "b.txt.gz", "".join(lines[2:]))
    for limit, upto in [(1, 1), (8, 1), (9, 2), (14, 2), (15, 3), (24, 3), (25, 4), (0, 4)]:
        for paths in ([a, b], [write(tmp_path, "ab.txt", "".join(lines))]):
            for workers in (1, 2) if limit in (9, 25) else (1,):
                counts, stats = word_counts.count_words(
                    paths, True, num_workers=workers, max_bytes=limit, range_bytes=3
                )
                assert counts == counts_of("".join(lines[:upto])), (limit, paths)
                assert stats.lines == upto


def test_gz_input_and_bad_bytes(tmp_path):
    text = TEXT + "bad \xff byte\n"
    plain = tmp_path / "a.txt"
    plain.write_bytes(text.encode("utf-8").replace("\xff".encode("utf-8"), b"\xff"))
    gz = tmp_path / "a.txt.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert word_counts.count_words([str(plain)], True)[0] == word_counts.count_words(
        [str(gz)], True)[0] == counts_of(TEXT + "bad  byte\n")


def test_counts_with_the_tokenizer_options_whatever_the_workers(tmp_path):
    """Accents kept while lower-casing, ideographs left in their words, never-split chunks left
    out (they are tokens of their own): the same counts from 1 and 2 workers."""
    text = TEXT + "see <url> and <URL> på\n" * 3
    path = write(tmp_path, "a.txt", text)
    options = TokenizerOptions(strip_accents=False, tokenize_chinese_chars=False,
                               never_split=("<url>",))
    expected = collections.Counter(
        w for chunk in textlib.chunks(text) if chunk != "<url>"
        for w in textlib.normalize_chunk(chunk, True, False, False))
    for workers, range_bytes in ((1, 1 << 20), (2, 40)):
        counts, _ = word_counts.count_words([path], True, num_workers=workers,
                                            range_bytes=range_bytes, options=options)
        assert counts == expected
    assert expected["på"] == 3 and expected["中文字"] == 1 and expected["url"] == 3
    google = word_counts.count_words([path], True)[0]
    assert google["pa"] == 3 and "på" not in google and google["中"] == 1
    assert google["url"] == 6
