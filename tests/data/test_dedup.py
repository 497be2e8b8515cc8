"""Exact deduplication (--dedup=exact): which documents repeat, and the sharded build that drops
them. (The same on Beam: test_beam_data.py.)"""

import json
import os
import unicodedata

import pytest

from helpers import scaled
from norbert.data import dedup, slices
from norbert.data.builder import create_pretraining_data
from norbert.data.documents import CorpusStats
from norbert.errors import NorbertError


def _lines(text):
    return [(line, len(line) + 1) for line in text.split("\n")]


def test_runs_are_the_documents_that_the_builders_read():
    text = "a b\n  c  \n\n\n d\n \u00a0\ne\nf\n"
    assert list(dedup.runs(_lines(text))) == [["a b", "c"], ["d"], ["e", "f"]]
    # slices.documents numbers the same runs: skipping ordinal 1 drops "d" only.
    stats = CorpusStats()
    docs = [d for d, _ in slices.documents(iter(_lines(text)), lambda s: [len(s)], stats,
                                           skip={1}) if d]
    assert docs == [[[3], [1]], [[1], [1]]] and stats.duplicates == 1


def test_normalised_text_ignores_spacing_and_unicode_composition_only():
    same = ["Blåbær  er\tgodt.", unicodedata.normalize("NFD", "Blåbær er godt."),
            " Blåbær er godt. \r"]
    digests = {dedup.digest(next(dedup.runs(_lines(t)))) for t in same}
    assert len(digests) == 1
    for other in ["blåbær er godt.", "Blåbær er godt", "Blabær er godt."]:
        assert dedup.digest([dedup.normalise(other)]) not in digests
    # Line breaks count: the same words as two sentences are another document.
    assert dedup.digest(["a b"]) != dedup.digest(["a", "b"])


def test_the_first_copy_is_kept_wherever_it_lies():
    a, b, c = (dedup.digest([x]) for x in "abc")
    # Slices in input order: a b | b a c | c
    assert dedup.dropped([a + b, b + a + c, c]) == [[], [0, 1], [0]]
    assert dedup.dropped([a + a + a]) == [[1, 2]]


# -- whole builds ---------------------------------------------------------------------------


def planted_corpus(folder, corpus_paths, copies_every=5):
    """``folder``/text-*.txt: the shared corpora's documents, then every ``copies_every``-th of
    them again with other spacing and Unicode composition (in a later file, and a few copies
    earlier than their originals). Returns (paths, unique paths, number of copies planted)."""
    docs = []
    for path in corpus_paths:
        with open(path, encoding="utf-8") as f:
            docs += [d for d in f.read().split("\n\n") if d.strip()]
    docs = list(dict.fromkeys(docs))  # the corpora's own repeats, if any, out of the count
    copies = []
    for i, doc in enumerate(docs[::copies_every]):
        lines = doc.split("\n")
        if i % 2:
            lines = ["  " + "  ".join(line.split()) + " \t" for line in lines]
        else:
            lines = [unicodedata.normalize("NFD", line) for line in lines]
        copies.append("\n".join(lines))
    early, late = copies[:3], copies[3:]
    files = {"text-0.txt": early, "text-1.txt": docs, "text-2.txt": late}
    for name, part in files.items():
        (folder / name).write_text("\n\n".join(part) + "\n\n", encoding="utf-8")
    (folder / "unique.txt").write_text("\n\n".join(docs) + "\n\n", encoding="utf-8")
    return ([str(folder / name) for name in files], [str(folder / "unique.txt")], len(copies))


@pytest.fixture(scope="module")
def planted(corpus_paths, tmp_path_factory):
    return planted_corpus(tmp_path_factory.mktemp("planted"), corpus_paths)


def _build(inputs, out, vocab, **settings):
    return create_pretraining_data(input_file=",".join(inputs), output_file=str(out),
                                   vocab_file=vocab, dupe_factor=1, progress=False,
                                   num_output_shards=4, **settings)


def test_planted_copies_are_dropped_and_counted(planted, uncased_vocab_path, tmp_path):
    inputs, unique, planted_copies = planted
    kept = _build(inputs, tmp_path / "a" / "train.tfrecord", uncased_vocab_path, dedup="exact",
                  num_workers=2)
    alone = _build(unique, tmp_path / "u" / "train.tfrecord", uncased_vocab_path)
    assert planted_copies > scaled(100)
    assert kept.corpus.duplicates == planted_copies
    assert kept.corpus.documents == alone.corpus.documents
    assert kept.corpus.sentences == alone.corpus.sentences
    assert kept.corpus.tokens == alone.corpus.tokens
    whole = json.loads((tmp_path / "a" / "train.tfrecord.meta.json").read_text())
    assert whole["counts"]["duplicate_documents"] == planted_copies
    assert whole["settings"]["dedup"] == "exact" and whole["shard_set"] is True
    shards = [json.loads((tmp_path / "a" / ("train.tfrecord-%05d-of-00004.meta.json" % k))
                         .read_text()) for k in range(4)]
    assert sum(m["counts"]["duplicate_documents"] for m in shards) == planted_copies
    assert whole["records_per_file"] == [m["instances_in_file"] for m in shards]


def test_dedup_does_not_depend_on_the_number_of_workers(planted, uncased_vocab_path, tmp_path):
    inputs = planted[0]
    for workers in (1, 2):
        _build(inputs, tmp_path / str(workers) / "train.tfrecord", uncased_vocab_path,
               dedup="exact", num_workers=workers)
    for name in sorted(os.listdir(str(tmp_path / "1"))):
        if not name.endswith(".json"):
            assert ((tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes())


def test_without_dedup_the_copies_stay(planted, uncased_vocab_path, tmp_path):
    inputs, _, planted_copies = planted
    alone = _build(inputs, tmp_path / "train.tfrecord", uncased_vocab_path)
    deduped = _build(inputs, tmp_path / "d" / "train.tfrecord", uncased_vocab_path,
                     dedup="exact")
    assert alone.corpus.duplicates == 0
    assert alone.corpus.documents == deduped.corpus.documents + planted_copies


def test_dedup_needs_the_sharded_mode(corpus_paths, uncased_vocab_path, tmp_path):
    # Called with keywords: the error names them as keywords (the command line's names flags).
    with pytest.raises(NorbertError, match="^dedup=exact works in the sharded and Beam modes: "
                                           "add num_output_shards=N"):
        create_pretraining_data(input_file=corpus_paths[0], output_file=str(tmp_path / "x"),
                                vocab_file=uncased_vocab_path, dedup="exact")
    assert not os.listdir(str(tmp_path))
