"""Held-out documents (norbert.data.heldout): exactly N drawn by the seed, the same in every mode,
none of their text in the training records (decoded), the split in the sidecars; the draw merged
from slices equals the draw over the whole input; the flags checked."""

import json
import os

import pytest

from helpers import DOCUMENTS, corpus_files
from norbert.data import heldout, slices, tfrecord
from norbert.data.builder import DataConfig, create_pretraining_data
from norbert.data.config import load_tokenizer
from norbert.errors import NorbertError
from norbert.tokenization.options import TokenizerOptions

N = 7
GRAM = 5  # tokens: a held-out sentence is looked for by its runs of this many tokens


def _encode(text):
    """Token ids of a test's text: one per word, none for NUL characters."""
    return [len(w) + 5 for w in text.replace("\x00", " ").split()]


def _lines(documents):
    out = []
    for document in documents:
        out += [(line, len(line) + 1) for line in document] + [("", 1)]
    return out


def test_the_draw_from_slices_is_the_draw_over_the_whole_input():
    documents = [["doc %d line %d" % (d, i) for i in range(3)] for d in range(40)]
    documents[30] = list(documents[3])  # a copy of document 3
    documents[12] = ["\x00"]  # no tokens: never drawn
    lines = _lines(documents)
    whole = heldout.choose([heldout.slice_candidates(lines, 5, 1, _encode)], 5, "in")
    cut = len(_lines(documents[:17]))
    parts = [heldout.slice_candidates(lines[:cut], 5, 1, _encode),
             heldout.slice_candidates(lines[cut:], 5, 1, _encode)]
    merged = heldout.choose(parts, 5, "in")
    assert len(whole.keys) == 5 and merged.keys == whole.keys
    assert merged.documents == whole.documents
    assert ["\x00"] not in whole.documents
    # Every copy is skipped, in whichever slice it is; ordinals are the slice's own.
    chosen = {tuple(d) for d in whole.documents}
    assert {o for o in whole.skip[0]} == {i for i, d in enumerate(documents)
                                          if tuple(d) in chosen}
    assert {o + 17 for o in merged.skip[1]} | set(merged.skip[0]) == set(whole.skip[0])
    # Another seed, another draw.
    other = heldout.choose([heldout.slice_candidates(lines, 5, 2, _encode)], 5, "in")
    assert other.keys != whole.keys


def test_too_many_held_out_documents_name_the_flag():
    lines = _lines([["a b"], ["c d"], ["a  b"]])  # two distinct texts
    with pytest.raises(NorbertError, match="--heldout_documents=3.*only 2 distinct"):
        heldout.choose([heldout.slice_candidates(lines, 3, 1, _encode)], 3, "in")
    with pytest.raises(NorbertError, match="--heldout_documents=2 holds out every document"):
        heldout.choose([heldout.slice_candidates(lines, 2, 1, _encode)], 2, "in")


@pytest.mark.parametrize("changes, message", [
    (dict(heldout_documents=-1), "--heldout_documents=-1 must be at least 0"),
    (dict(heldout_documents=3), "--heldout_documents=3 needs --heldout_output_file"),
    (dict(heldout_output_file="h.tfrecord"), "--heldout_output_file=h.tfrecord needs"),
    (dict(heldout_documents=3, heldout_output_file="o.tfrecord"), "is a training output"),
    (dict(heldout_documents=3, heldout_output_file="o.tfrecord-00001-of-00002",
          num_output_shards=2), "is a training output"),
    (dict(heldout_documents=3, heldout_output_file="a,b"), "names several files"),
])
def test_bad_heldout_flags_name_the_flag(changes, message):
    with pytest.raises(NorbertError, match=message) as e:
        DataConfig(input_file="i.txt", output_file="o.tfrecord", vocab_file="v.txt", **changes)
    assert "\n" not in str(e.value)


# -- the builds, on the shipped (and shared) text ------------------------------------------


def _build(folder, paths, vocab, n=N, **changes):
    os.makedirs(folder, exist_ok=True)
    settings = dict(input_file=",".join(paths), output_file=os.path.join(folder, "train.tfrecord"),
                    vocab_file=vocab, dupe_factor=1, progress=False)
    if n:
        settings.update(heldout_documents=n,
                        heldout_output_file=os.path.join(folder, "heldout.tfrecord"))
    settings.update(changes)
    return create_pretraining_data(**settings)


@pytest.fixture(scope="module")
def builds(tmp_path_factory, uncased_vocab_path):
    root = str(tmp_path_factory.mktemp("heldout"))
    paths = corpus_files()
    out = {}
    for mode, changes in (("reference", {}), ("sharded", dict(num_workers=2))):
        folder = os.path.join(root, mode)
        out[mode] = (folder, _build(folder, paths, uncased_vocab_path, **changes))
    return paths, out


def _tokens(record):
    """A record's input_ids with its masked tokens put back, cut into its segments."""
    example = tfrecord.decode_example(record)
    ids = list(example["input_ids"])
    for pos, original, weight in zip(example["masked_lm_positions"], example["masked_lm_ids"],
                                     example["masked_lm_weights"]):
        if weight > 0:
            ids[pos] = original
    segments, current = [], []
    for t in ids:
        if t in (0, 101, 102):  # [PAD], [CLS], [SEP] of the uncased vocab
            if current:
                segments.append(current)
            current = []
        else:
            current.append(t)
    return segments


def _grams(sequences):
    return {tuple(s[i:i + GRAM]) for s in sequences for i in range(len(s) - GRAM + 1)}


def _record_grams(paths):
    return _grams(seg for p in paths for r in tfrecord.read_records(p) for seg in _tokens(r))


def held_out_grams(paths, vocab):
    """(the held-out documents' lines, the grams of their sentences found in no other
    document, the other documents' grams), for the default settings and N."""
    config = DataConfig(input_file=",".join(paths), output_file="x", vocab_file=vocab,
                        heldout_documents=N, heldout_output_file="h")
    tokenizer = load_tokenizer(config, TokenizerOptions())[1]
    chosen = heldout.select_whole(config, tokenizer, paths).documents
    reader = slices.SliceReader(paths, (0, 0), (len(paths), 0))
    held, kept = [], []
    for _, run in heldout.runs(reader):
        sentences = [tokenizer.encode(line) for line in run]
        if run in chosen:
            held += sentences
        else:
            kept.append([t for s in sentences for t in s])  # across sentences, as pairs join them
    return chosen, _grams(held) - _grams(kept), _grams(kept)


def training_grams(folder):
    """The grams of the training records a build wrote into ``folder``."""
    meta = json.load(open(os.path.join(folder, "train.tfrecord.meta.json")))
    return _record_grams([os.path.join(folder, os.path.basename(p))
                          for p in meta["output_files"]])


@pytest.fixture(scope="module")
def split(builds, uncased_vocab_path):
    return held_out_grams(builds[0], uncased_vocab_path)


@pytest.mark.parametrize("mode", ["reference", "sharded"])
def test_no_held_out_sentence_is_in_the_training_records(builds, split, mode):
    _, out = builds
    folder, summary = out[mode]
    chosen, held_only, kept = split
    assert len(chosen) == N and summary.heldout_documents == N
    assert len(held_only) > 50  # enough held-out text to look for
    trained = training_grams(folder)
    assert not trained & held_only
    assert trained <= kept  # the decoding is right: every run of tokens comes from the input
    # The detector can fire: the held-out records hold most of that text.
    found = _record_grams([os.path.join(folder, "heldout.tfrecord")]) & held_only
    assert len(found) > 0.5 * len(held_only)


def test_every_mode_holds_out_the_same_documents_and_sidecars_record_the_split(builds):
    paths, out = builds
    files = {}
    for mode, (folder, summary) in out.items():
        with open(os.path.join(folder, "heldout.tfrecord"), "rb") as f:
            files[mode] = f.read()
        held = json.load(open(os.path.join(folder, "heldout.tfrecord.meta.json")))
        train = json.load(open(os.path.join(folder, "train.tfrecord.meta.json")))
        assert held["heldout"]["role"] == "held-out"
        assert held["heldout"]["documents"] == held["counts"]["documents"] == N
        assert held["settings"]["mode"] == "reference-exact"
        assert held["heldout"]["training_output_files"] == train["output_files"]
        assert train["heldout"] == {"role": "training", "documents": N, "random_seed": 12345,
                                    "heldout_output_file": os.path.join(folder,
                                                                        "heldout.tfrecord")}
        assert train["settings"]["heldout_documents"] == N
        total = sum(DOCUMENTS[os.path.basename(p)] for p in paths)
        assert summary.corpus.documents == train["counts"]["documents"] == total - N
        assert summary.heldout_instances == held["instances_in_file"] > 0
    assert files["reference"] == files["sharded"]  # the same documents, the same records


def test_reference_mode_trains_on_the_rest_as_the_reference_would(builds, split, tmp_path,
                                                                  uncased_vocab_path):
    """With held-out documents, the reference-exact mode's training records are those of the
    input without them: the reference's records of the rest."""
    paths, out = builds
    chosen = {tuple(d) for d in split[0]}
    reader = slices.SliceReader(paths, (0, 0), (len(paths), 0))  # documents run across files
    kept = [run for _, run in heldout.runs(reader) if tuple(run) not in chosen]
    rest = str(tmp_path / "rest.txt")
    with open(rest, "w", encoding="utf-8") as f:
        f.write("".join("\n".join(run) + "\n\n" for run in kept))
    _build(str(tmp_path / "rest"), [rest], uncased_vocab_path, n=0)
    with open(str(tmp_path / "rest" / "train.tfrecord"), "rb") as f:
        expected = f.read()
    with open(os.path.join(out["reference"][0], "train.tfrecord"), "rb") as f:
        assert f.read() == expected


def test_a_sharded_rerun_with_another_split_rebuilds_its_shards(tmp_path, uncased_vocab_path):
    paths = corpus_files()[-2:]
    folder = str(tmp_path)
    _build(folder, paths, uncased_vocab_path, n=2, num_output_shards=2)
    again = _build(folder, paths, uncased_vocab_path, n=2, num_output_shards=2)
    assert again.shards_skipped == 2  # the same split: kept
    summary = _build(folder, paths, uncased_vocab_path, n=3, num_output_shards=2)
    assert summary.shards_skipped == 0 and summary.heldout_documents == 3
    assert summary.corpus.documents == again.corpus.documents - 1
    for k in range(2):
        meta = json.load(open(os.path.join(folder, "train.tfrecord-%05d-of-00002.meta.json" % k)))
        assert meta["heldout"]["documents"] == 3
