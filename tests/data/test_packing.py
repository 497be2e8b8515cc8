"""Packed records of the masked-LM-only objective (``--objective=mlm``): every sentence once per
pass and in order, records full (with --cross_documents) or within one document (without), or
with --whole_sentences made of whole sentences, Google's schema with one segment, and the
objective in the sidecar."""

import collections
import glob
import os
import random

import pytest

from helpers import DATA_DIR, TEXT_DIR
from norbert.data import sidecar, tfrecord
from norbert.data.builder import create_pretraining_data
from norbert.data.config import DataConfig, load_tokenizer
from norbert.data.documents import CorpusStats, read_documents
from norbert.data.draws import Draws
from norbert.data.features import NOT_MASKABLE, WORD_PIECE, WORD_START, candidate_marks
from norbert.data.masking import leave_unmasked
from norbert.data.packing import packed_instances, packed_runs, record_of
from norbert.data.sharded import records_per_byte
from norbert.errors import NorbertError
from norbert.tokenization.options import TokenizerOptions

CLS, SEP = 101, 102  # the uncased vocab's


def _flat(document):
    return [t for sentence in document for t in sentence]


def _body_parts(tokens):
    """A record's parts: its tokens between [CLS] and the [SEP]s."""
    assert tokens[0] == CLS and tokens[-1] == SEP
    parts, part = [], []
    for t in tokens[1:]:
        if t == SEP:
            parts.append(part)
            part = []
        else:
            part.append(t)
    return parts


def test_runs_fill_records_split_long_sentences_and_respect_documents():
    documents = [[[1] * 3, [2] * 9], [[3] * 2], [[4, 5]]]
    within = list(packed_runs(documents, 4, cross_documents=False))
    assert within == [[[1, 1, 1, 2]], [[2, 2, 2, 2]], [[2, 2, 2, 2]], [[3, 3]], [[4, 5]]]
    across = list(packed_runs(documents, 4, cross_documents=True))
    # [SEP] between documents takes one place; a document whose end leaves less than two
    # places closes the record (its own [SEP] marks the end).
    assert across == [[[1, 1, 1, 2]], [[2, 2, 2, 2]], [[2, 2, 2, 2]], [[3, 3], [4]], [[5]]]
    for runs in (within, across):
        assert sum(len(p) for run in runs for p in run) == sum(map(len, map(_flat, documents)))
        assert all(sum(map(len, run)) + len(run) - 1 <= 4 for run in runs)
    tokens, candidates = record_of([[3, 3], [4]], CLS, SEP)
    assert tokens == [CLS, 3, 3, SEP, 4, SEP] and candidates == [1, 2, 4]


def test_whole_sentences_move_the_sentence_that_does_not_fit_to_the_next_record():
    documents = [[[1] * 3, [2] * 9, [6] * 2], [[3] * 2], [[4, 5]]]
    within = list(packed_runs(documents, 4, False, whole_sentences=True))
    # [2]*9 does not fit after [1]*3: it opens a fresh record, split as it is longer than a
    # body; [6]*2 joins its last piece whole.
    assert within == [[[1, 1, 1]], [[2, 2, 2, 2]], [[2, 2, 2, 2]], [[2, 6, 6]], [[3, 3]],
                      [[4, 5]]]
    across = list(packed_runs(documents, 4, True, whole_sentences=True))
    # After [3, 3]'s [SEP] one place is left: [4, 5] does not fit whole, and that [SEP]
    # closes the record (the split default gave [[3, 3], [4]], [[5]]).
    assert across == within
    fits = [[[1]], [[2]], [[3] * 3]]
    assert list(packed_runs(fits, 4, True, whole_sentences=True)) == [[[1], [2]], [[3] * 3]]
    assert list(packed_runs(fits, 4, True)) == [[[1], [2]], [[3, 3, 3]]]
    for runs in (within, across):
        _assert_whole_sentences(runs, documents, 4, cross_documents=True)


def _assert_whole_sentences(runs, documents, body_length, cross_documents):
    """``runs`` hold every sentence of ``documents`` once, in order, each part within one
    document (a part but the last ending its document; one part a run without
    ``cross_documents``); a sentence is cut only when longer than a body, and then starts a
    record; a record closes only when the next sentence does not fit in the room left."""
    sentences = [(d, s) for d, document in enumerate(documents) for s in document if s]
    i = offset = 0  # the sentence being read, and its tokens read so far
    room = None  # the room the last record left for the next sentence
    for run in runs:
        assert sum(map(len, run)) + len(run) - 1 <= body_length and all(run)
        assert cross_documents or len(run) == 1
        if offset:  # a long sentence's rest opens the record
            assert len(sentences[i][1]) > body_length
        elif room is not None:  # the record before closed for want of room
            assert len(sentences[i][1]) > room
        for k, part in enumerate(run):
            document, at = sentences[i][0], 0
            while at < len(part):
                d, sentence = sentences[i]
                assert d == document  # a part lies within one document
                if not offset and len(sentence) > body_length:
                    assert k == 0 and at == 0  # a long sentence starts a record
                take = part[at:at + len(sentence) - offset]
                assert take == sentence[offset:offset + len(take)]
                at, offset = at + len(take), offset + len(take)
                if offset == len(sentence):
                    i, offset = i + 1, 0
                else:  # cut: only a long sentence, at the record's end
                    assert len(sentence) > body_length and k == len(run) - 1
            if k < len(run) - 1:  # a [SEP] inside the record: its document ended
                assert not offset and (i == len(sentences) or sentences[i][0] != document)
        used = sum(map(len, run)) + len(run) - 1
        ended = not offset and (i == len(sentences) or sentences[i][0] != sentences[i - 1][0])
        room = None if ended and not cross_documents else body_length - used - ended
    assert i == len(sentences) and not offset


def test_marks_never_mask_a_separator_nor_join_a_word_across_it():
    tokens = [CLS, 7, 8, SEP, 8, 7, SEP]
    continuation = bytes(1 if t == 8 else 0 for t in range(110))
    marks = candidate_marks(tokens, [1, 2, 4, 5], continuation)
    assert list(marks) == [NOT_MASKABLE, WORD_START, WORD_PIECE, NOT_MASKABLE, WORD_START,
                           WORD_START, NOT_MASKABLE]


@pytest.fixture(scope="module")
def shipped(uncased_vocab_path):
    """(the shipped text's files, their documents as token ids, in file order)."""
    paths = sorted(glob.glob(os.path.join(TEXT_DIR, "*.txt")))
    config = DataConfig(input_file=",".join(paths), output_file="x", vocab_file=uncased_vocab_path)
    tokenizer = load_tokenizer(config, TokenizerOptions(do_lower_case=True))[1]
    documents = read_documents(paths, tokenizer.encode, CorpusStats())
    return paths, documents


@pytest.mark.parametrize("cross_documents", [False, True])
def test_every_sentence_once_per_pass_in_order(shipped, cross_documents):
    documents = shipped[1]
    records = list(packed_instances(documents, 128, cross_documents, leave_unmasked,
                                    Draws(random.Random(1)), CLS, SEP, dupe_factor=2))
    per_pass = len(records) // 2
    assert records[:per_pass] == records[per_pass:]  # unmasked: the same cuts each pass
    stream = [t for r in records[:per_pass] for part in _body_parts(r.tokens) for t in part]
    assert stream == [t for d in documents for t in _flat(d)]
    assert all(len(r.tokens) <= 128 for r in records)
    if not cross_documents:  # each record's body lies in one document, and ends it or is full
        bodies = iter(_body_parts(r.tokens)[0] for r in records[:per_pass])
        for document in documents:
            flat, got = _flat(document), []
            while len(got) < len(flat):
                body = next(bodies)
                assert len(body) == 126 or len(got) + len(body) == len(flat)
                got.extend(body)
            assert got == flat


@pytest.mark.parametrize("max_seq_length", [16, 128])
@pytest.mark.parametrize("cross_documents", [False, True])
def test_whole_sentences_on_the_shipped_text(shipped, cross_documents, max_seq_length):
    documents = shipped[1]
    runs = list(packed_runs(documents, max_seq_length - 2, cross_documents,
                            whole_sentences=True))
    _assert_whole_sentences(runs, documents, max_seq_length - 2, cross_documents)
    split = list(packed_runs(documents, max_seq_length - 2, cross_documents))
    if cross_documents:  # more records than the full ones: the padding whole sentences cost
        assert len(runs) > len(split)
    records = list(packed_instances(documents, max_seq_length, cross_documents,
                                    leave_unmasked, Draws(random.Random(1)), CLS, SEP,
                                    dupe_factor=2, whole_sentences=True))
    assert [_body_parts(r.tokens) for r in records] == runs + runs  # the same cuts each pass


def test_record_estimate_counts_the_padding_of_whole_sentences(shipped, uncased_vocab_path):
    paths, documents = shipped  # all of it within the estimate's sample
    nbytes = sum(os.path.getsize(p) for p in paths)
    estimates = {}
    for whole in (False, True):
        config = DataConfig(input_file=",".join(paths), output_file="x", objective="mlm",
                            vocab_file=uncased_vocab_path, cross_documents=True,
                            whole_sentences=whole, dupe_factor=1)
        encode = load_tokenizer(config, TokenizerOptions(do_lower_case=True))[1].encode
        estimates[whole] = records_per_byte(config, encode, paths) * nbytes
        built = len(list(packed_runs(documents, 126, True, whole_sentences=whole)))
        assert abs(estimates[whole] - built) <= 0.05 * built, (whole, estimates[whole], built)
    assert estimates[True] > 1.05 * estimates[False]


def _decoded(path):
    return [tfrecord.decode_example(r) for r in tfrecord.read_records(path)]


def _build(tmp_path, paths, vocab, name, **settings):
    out = str(tmp_path / name)
    summary = create_pretraining_data(
        input_file=",".join(paths), output_file=out, vocab_file=vocab, objective="mlm",
        do_lower_case=True, progress=False, max_predictions_per_seq=20, **settings)
    return out, summary


def test_built_records_are_full_one_segment_and_hold_every_token(tmp_path, shipped,
                                                                 uncased_vocab_path):
    paths, documents = shipped
    out, summary = _build(tmp_path, paths, uncased_vocab_path, "mlm.tfrecord",
                          cross_documents=True, masking="dynamic", dupe_factor=2)
    examples = _decoded(out)
    padding = 1 - summary.instance_tokens / (128 * summary.instances)
    assert padding <= 0.02, padding
    assert all(set(e["segment_ids"]) == {0} and e["next_sentence_labels"] == [0]
               for e in examples)
    found = collections.Counter(t for e in examples for t in e["input_ids"]
                                if t not in (0, CLS, SEP))
    expected = collections.Counter(t for d in documents for t in _flat(d))
    assert found == collections.Counter({t: 2 * n for t, n in expected.items()})
    for e in examples:  # [CLS] and every [SEP] unmaskable
        assert all(m == 0 for t, m in zip(e["input_ids"], e["maskable"]) if t in (CLS, SEP))
    meta = sidecar.read(out)
    assert sidecar.objective_of(meta) == "mlm" and meta["settings"]["cross_documents"] is True
    assert sidecar.objective_of({"settings": {}}) == "mlm_nsp"  # sidecars before the setting


def _of_whole_sentences(part, documents, lengths, where):
    """Whether ``part`` is consecutive whole sentences of one document; ``where`` maps a
    sentence's tokens to its places ``(document, index)``, ``lengths`` the sentences' lengths."""
    for n in lengths:
        for d, k in where.get(tuple(part[:n]), ()):
            at = 0
            for sentence in documents[d][k:]:
                if part[at:at + len(sentence)] != sentence:
                    break
                at += len(sentence)
                if at == len(part):
                    return True
    return False


def test_built_records_with_whole_sentences(tmp_path, shipped, uncased_vocab_path):
    paths, documents = shipped
    built = {}
    for whole in (False, True):
        out, built[whole] = _build(tmp_path, paths, uncased_vocab_path, "w%d" % whole,
                                   cross_documents=True, masking="dynamic", dupe_factor=1,
                                   whole_sentences=whole)
    where = collections.defaultdict(list)
    for d, document in enumerate(documents):
        for k, sentence in enumerate(document):
            where[tuple(sentence)].append((d, k))
    lengths = sorted({len(sentence) for sentence in where})
    parts = [part for e in _decoded(out) for part in _body_parts(
        [t for t in e["input_ids"] if t])]
    assert all(_of_whole_sentences(part, documents, lengths, where) for part in parts)
    assert sorted(t for part in parts for t in part) == sorted(
        t for d in documents for t in _flat(d))
    assert built[True].instances > built[False].instances  # the padding whole sentences cost
    meta = sidecar.read(out)
    assert meta["settings"]["whole_sentences"] is True
    assert meta["settings"]["mode"] == "dynamic-masking+mlm-cross-documents-whole-sentences"
    assert "whole_sentences" not in sidecar.read(str(tmp_path / "w0"))["settings"]


def test_static_masks_and_sharded_mode(tmp_path, shipped, uncased_vocab_path):
    paths = shipped[0]
    out, summary = _build(tmp_path, paths, uncased_vocab_path, "static.tfrecord",
                          dupe_factor=1, do_whole_word_mask=True)
    for e in _decoded(out):
        n = sum(e["input_mask"])
        positions = [p for p, w in zip(e["masked_lm_positions"], e["masked_lm_weights"]) if w]
        assert positions and all(0 < p < n - 1 for p in positions)
        labels = e["masked_lm_ids"][:len(positions)]
        assert CLS not in labels and SEP not in labels
    assert summary.random_next == 0
    again, _ = _build(tmp_path, paths, uncased_vocab_path, "again.tfrecord",
                      dupe_factor=1, do_whole_word_mask=True)
    assert _decoded(again) == _decoded(out)  # the seed fixes every record
    base, sharded = _build(tmp_path, paths, uncased_vocab_path, "shards", masking="dynamic",
                           num_output_shards=2, num_workers=1)
    files = sorted(glob.glob(base + "-*-of-0000[0-9]"))
    assert len(files) == 2 and all(sidecar.objective_of(sidecar.read(f)) == "mlm"
                                   for f in files)
    tokens = sum(sum(e["input_mask"]) for f in files for e in _decoded(f))
    assert tokens == sharded.instance_tokens
    assert sharded.instance_tokens - 2 * sharded.instances == sum(
        map(len, map(_flat, shipped[1])))  # no document crossed: one [CLS]/[SEP] pair each


def test_settings_that_cannot_work_are_one_line_errors():
    base = dict(input_file="in.txt", output_file="o", vocab_file="v")
    with pytest.raises(NorbertError, match="--pairing=dynamic.*--objective=mlm"):
        DataConfig(objective="mlm", pairing="dynamic", **base)
    with pytest.raises(NorbertError, match="--cross_documents.*--objective=mlm"):
        DataConfig(cross_documents=True, **base)
    with pytest.raises(NorbertError, match=r"^--whole_sentences packs records of "
                                           r"--objective=mlm: add --objective=mlm or drop "
                                           r"--whole_sentences$"):
        DataConfig(whole_sentences=True, **base)
    assert DataConfig(objective="mlm", whole_sentences=True, cross_documents=True,
                      **base).mode == "mlm-cross-documents-whole-sentences"
    with pytest.raises(NorbertError, match="--objective=nsp"):
        DataConfig(objective="nsp", **base)
    assert DataConfig(objective="mlm", **base).mode == "mlm"
    with pytest.raises(NorbertError, match=r"^--short_seq_prob=0.3 cuts --objective=mlm_nsp's "
                                           r"pairs short; .*: drop --short_seq_prob$"):
        DataConfig(objective="mlm", short_seq_prob=0.3, **base)
    for kept in (0.0, 0.1):  # the default, and none: what packing does anyway
        assert DataConfig(objective="mlm", short_seq_prob=kept, **base).short_seq_prob == kept
    assert DataConfig(short_seq_prob=0.3, **base).short_seq_prob == 0.3


@pytest.mark.slow
@pytest.mark.parametrize("max_seq_length", [128, 512])
def test_padding_on_the_shared_corpora(tmp_path, uncased_vocab_path, max_seq_length):
    paths = sorted(glob.glob(os.path.join(DATA_DIR, "*.txt")))
    if not paths:
        pytest.skip("the shared corpora are absent")
    shares = {}
    for whole in (False, True):
        for cross in (True, False):
            _, summary = _build(tmp_path, paths, uncased_vocab_path, "p%d%d" % (whole, cross),
                                cross_documents=cross, max_seq_length=max_seq_length,
                                dupe_factor=1, masking="dynamic", whole_sentences=whole)
            shares[whole, cross] = 1 - summary.instance_tokens / (max_seq_length
                                                                  * summary.instances)
        print("padding share at %d, %s: cross_documents=true %.4f, false %.4f"
              % (max_seq_length, "whole sentences" if whole else "split (default)",
                 shares[whole, True], shares[whole, False]))
    assert shares[False, True] <= 0.02 < shares[False, False]
    # Whole sentences cost padding (about half a sentence a record): not held to 2%.
    assert shares[True, True] > shares[False, True] and shares[True, False] > shares[False, False]


@pytest.mark.parametrize("whole_sentences", [False, True])
def test_heldout_sharded_and_beam_builds_pack_alike(tmp_path, shipped, uncased_vocab_path,
                                                    whole_sentences):
    paths = shipped[0]
    built = {}
    out = tmp_path / "out"  # one path for both: the sidecars name the output files
    for name, how in (("local", dict(num_workers=1)), ("beam", dict(runner="DirectRunner"))):
        if name == "beam":
            pytest.importorskip("apache_beam")
        _build(out, paths, uncased_vocab_path, "train", num_output_shards=2,
               cross_documents=True, heldout_documents=2, whole_sentences=whole_sentences,
               heldout_output_file=str(out / "heldout"), **how)
        for f in ("train-00000-of-00002", "heldout"):
            settings = sidecar.read(str(out / f))["settings"]
            assert settings.get("whole_sentences", False) is whole_sentences
        built[name] = {f: open(os.path.join(str(out), f), "rb").read()
                       for f in os.listdir(str(out)) if not f.endswith(".meta.json")}
        os.rename(str(out), str(tmp_path / name))
        if name == "local":
            heldout = _decoded(str(tmp_path / "local" / "heldout"))
            assert heldout and all(set(e["segment_ids"]) == {0} for e in heldout)
            meta = sidecar.read(str(tmp_path / "local" / "heldout"))
            assert sidecar.objective_of(meta) == "mlm"
    assert built["beam"] == built["local"] and len(built["local"]) == 3
