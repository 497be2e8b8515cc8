"""Records of ``--masking=dynamic`` end to end: built unmasked (local and sharded modes), a
fraction of static records' size, and masked afresh by the input pipeline each time read."""

import json
import os
import random

import numpy as np
import pytest

from helpers import REPO, corpus_file, has_shared_corpora
from norbert import NorbertError
from norbert.data.builder import create_pretraining_data
from norbert.data.features import DYNAMIC, parse_spec
from norbert.training import input_pipeline, record_checks
from norbert.training.input_pipeline import InputConfig

tf = pytest.importorskip("tensorflow").compat.v1

S, P = 32, 5
WORDS = ["w%d" % i for i in range(60)] + ["##x%d" % i for i in range(10)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(folder, text, vocab) of random words, some split into "##" pieces."""
    root = tmp_path_factory.mktemp("dynamic")
    rng = random.Random(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    # "w3x4" is w3 ##x4 for WordPiece: words of two pieces
    word = lambda: rng.choice(WORDS[:60]) + (rng.choice(WORDS[60:])[2:] if rng.random() < 0.3
                                             else "")
    docs = ["\n".join(" ".join(word() for _ in range(10)) for _ in range(4)) for _ in range(40)]
    (root / "text.txt").write_text("\n\n".join(docs) + "\n")
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return root, str(root / "text.txt"), str(root / "vocab.txt")


def _build(corpus, name, **settings):
    root, text, vocab = corpus
    summary = create_pretraining_data(input_file=text, output_file=str(root / name),
                                      vocab_file=vocab, max_seq_length=S,
                                      max_predictions_per_seq=P, progress=False, **settings)
    files = sorted(str(p) for p in root.glob(name + "*") if not str(p).endswith(".json"))
    return summary, files


def _parsed(files, pairing="static"):
    """Every record of ``files`` parsed (dynamic masking's features, or chunks'), as written."""
    spec = parse_spec(S, P, DYNAMIC, pairing)
    with tf.Graph().as_default(), tf.Session() as sess:
        record = tf.placeholder(tf.string, [])
        parsed = tf.io.parse_single_example(record, spec)
        for path in files:
            for r in tf.io.tf_record_iterator(path):
                yield sess.run(parsed, {record: r})


def _records(files):
    """[(input_ids, maskable)] of every record, unmasked as written."""
    return [(tuple(f["input_ids"]), tuple(f["maskable"])) for f in _parsed(files)]


def _batches(files, seed, count, batch_size=8, context=None, masking=None, s=S, p=P,
             **changes):
    """``count`` training batches of ``files`` (``changes``: more InputConfig fields)."""
    masking = masking or record_checks.dynamic_masking_of(files, p)
    settings = dict({"shuffle_buffer": 10}, **changes)
    input_fn = input_pipeline.make_input_fn(InputConfig(
        input_files=files, max_seq_length=s, max_predictions_per_seq=p, is_training=True,
        seed=seed, masking=masking, pairing=record_checks.dynamic_pairing_of(files),
        **settings))
    params = {"batch_size": batch_size}
    if context is not None:
        params["input_context"] = context
    with tf.Graph().as_default():
        batch = tf.data.make_one_shot_iterator(input_fn(params)).get_next()
        with tf.Session() as sess:
            return [sess.run(batch) for _ in range(count)]


def test_dynamic_records_are_a_fraction_of_static_ones_and_say_how_to_mask(corpus):
    static, static_files = _build(corpus, "static.tfrecord", dupe_factor=5)
    dynamic, dynamic_files = _build(corpus, "dynamic.tfrecord", masking="dynamic")
    assert dynamic.corpus.documents == static.corpus.documents == 40
    assert dynamic.masked_tokens == 0 and static.masked_tokens > 0
    # dupe_factor 1 by default: a fifth of the records, and at most a fifth of the bytes
    assert 0.15 < dynamic.instances / static.instances < 0.25
    size = lambda files: sum(open(f, "rb").seek(0, 2) for f in files)
    assert size(dynamic_files) <= size(static_files) / 5, (size(dynamic_files),
                                                           size(static_files))
    with open(dynamic_files[0] + ".meta.json") as f:
        meta = json.load(f)
    assert meta["settings"]["masking"] == "dynamic" and meta["settings"]["mask_id"] == 4
    assert meta["settings"]["dupe_factor"] == 1 and "maskable" in meta["features"]
    assert "masked_lm_ids" not in meta["features"]
    with open(static_files[0] + ".meta.json") as f:
        assert "masking" not in json.load(f)["settings"]  # static sidecars are as before
    records = _records(dynamic_files)
    for ids, marks in records:
        n = ids.index(0) if 0 in ids else S
        assert ids[0] == 2 and marks[0] == 0 and sum(i == 3 for i in ids) == 2
        assert all((m == 0) == (i in (2, 3) or k >= n)
                   for k, (i, m) in enumerate(zip(ids, marks)))
        # a "##" piece is 2, unless it opens a segment (it cannot join a word across [SEP])
        pieces = [m > 0 and WORDS[i - 5].startswith("##") for i, m in zip(ids, marks)]
        assert all((m == 2) == (piece and marks[k - 1] > 0)
                   for k, (m, piece) in enumerate(zip(marks, pieces)) if m)
    # The sharded mode writes the same kind of records.
    sharded, shard_files = _build(corpus, "shards", masking="dynamic", num_output_shards=2,
                                  num_workers=2)
    assert len(shard_files) == 2 and sharded.masked_tokens == 0
    assert sharded.corpus.documents == 40
    assert {m for _, marks in _records(shard_files) for m in marks} == {0, 1, 2}


def test_each_read_of_a_record_gets_fresh_masks_drawn_by_the_rules(corpus):
    _, files = _build(corpus, "fresh.tfrecord", masking="dynamic", do_whole_word_mask=True)
    records = dict(_records(files))  # unmasked input_ids -> maskable
    masking = record_checks.dynamic_masking_of(files, P)
    assert masking.whole_word and masking.mask_id == 4 and masking.vocab_size == 75
    seen = {}
    for batch in _batches(files, seed=1, count=3 * len(records) // 8):
        assert batch["input_ids"].shape == (8, S) and batch["masked_lm_ids"].shape == (8, P)
        assert "maskable" not in batch
        for row in range(8):
            ids = batch["input_ids"][row].copy()
            weights = batch["masked_lm_weights"][row]
            positions = batch["masked_lm_positions"][row][weights > 0]
            ids[positions] = batch["masked_lm_ids"][row][weights > 0]
            original = tuple(ids.tolist())
            assert original in records  # masked_lm_ids are what the positions held
            marks = np.array(records[original])
            assert len(positions) and (marks[positions] > 0).all()
            # whole words: a chosen "##" piece's word start is chosen too
            chosen = set(positions.tolist())
            assert all(p - 1 in chosen for p in chosen if marks[p] == 2)
            seen.setdefault(original, []).append(tuple(sorted(chosen)))
    again = [masks for masks in seen.values() if len(masks) > 1]
    assert len(again) > len(records) // 2  # most records were read more than once ...
    fresh = sum(len(set(masks)) > 1 for masks in again)
    assert fresh >= 0.9 * len(again), (fresh, len(again))  # ... with new masks each time


def test_masks_are_fixed_by_the_seed_and_differ_between_workers(corpus):
    _, files = _build(corpus, "seeded.tfrecord", masking="dynamic")
    first = _batches(files, seed=3, count=4)
    again = _batches(files, seed=3, count=4)
    other = _batches(files, seed=4, count=4)
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert any(not np.array_equal(a["masked_lm_positions"], b["masked_lm_positions"])
               for a, b in zip(first, other))
    # Two workers reading the same records (one file: by record) draw different masks.
    contexts = [tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i,
                                           num_replicas_in_sync=2) for i in range(2)]
    worker = [_batches(files, seed=3, count=2, context=c) for c in contexts]
    assert not np.array_equal(worker[0][0]["masked_lm_positions"],
                              worker[1][0]["masked_lm_positions"])


def test_mixed_or_orphaned_dynamic_records_are_refused(corpus, tmp_path):
    _, static_files = _build(corpus, "mixed_static.tfrecord", dupe_factor=1)
    _, dynamic_files = _build(corpus, "mixed_dynamic.tfrecord", masking="dynamic")
    assert record_checks.dynamic_masking_of(static_files, P) is None
    with pytest.raises(NorbertError, match="--input_file mixes records built differently: "
                                           ".*masks in the records"):
        record_checks.dynamic_masking_of(static_files + dynamic_files, P)
    _, other = _build(corpus, "mixed_prob.tfrecord", masking="dynamic", masked_lm_prob=0.2)
    with pytest.raises(NorbertError, match="mixes records built differently"):
        record_checks.dynamic_masking_of(dynamic_files + other, P)
    orphan = tmp_path / "orphan.tfrecord"
    orphan.write_bytes(open(dynamic_files[0], "rb").read())
    with pytest.raises(NorbertError, match="orphan.tfrecord holds records for masks drawn at "
                                           "training time but has no sidecar"):
        record_checks.dynamic_masking_of([str(orphan)], P)


def _unmasked(batch, row):
    """(A, B, label) of a batch's row, its masked positions restored."""
    ids = batch["input_ids"][row].copy()
    weights = batch["masked_lm_weights"][row]
    ids[batch["masked_lm_positions"][row][weights > 0]] = batch["masked_lm_ids"][row][weights > 0]
    n = int(batch["input_mask"][row].sum())
    segments = batch["segment_ids"][row][:n]
    len_a = int((segments == 0).sum()) - 2
    return (tuple(ids[1:len_a + 1].tolist()), tuple(ids[len_a + 2:n - 1].tolist()),
            int(batch["next_sentence_labels"][row][0]))


def _chunks(files):
    """The token ids of every chunk record, as tuples."""
    return [tuple(int(i) for i, m in zip(f["input_ids"], f["input_mask"]) if m)
            for f in _parsed(files, DYNAMIC)]


def test_chunk_records_say_how_to_pair_and_are_smaller_than_pairs(corpus):
    pairs, pair_files = _build(corpus, "pairs.tfrecord", masking="dynamic")
    chunks, chunk_files = _build(corpus, "chunks.tfrecord", masking="dynamic", pairing="dynamic")
    assert chunks.corpus.documents == 40 and chunks.masked_tokens == chunks.random_next == 0
    size = lambda files: sum(open(f, "rb").seek(0, 2) for f in files)
    assert size(chunk_files) <= size(pair_files)  # no [CLS]/[SEP], no sentence put back
    with open(chunk_files[0] + ".meta.json") as f:
        meta = json.load(f)
    settings = meta["settings"]
    assert (settings["pairing"], settings["cls_id"], settings["sep_id"]) == ("dynamic", 2, 3)
    assert settings["masking"] == "dynamic" and "dynamic-pairing" in settings["mode"]
    assert list(meta["features"]) == ["input_ids", "input_mask", "maskable", "sentence_starts",
                                      "target_length"]
    with open(pair_files[0] + ".meta.json") as f:
        assert "pairing" not in json.load(f)["settings"]  # pair records' sidecars as before
    # Every chunk is consecutive sentences of one document, in order: its words are the text's.
    text = open(corpus[1]).read().split()
    vocab = open(corpus[2]).read().split("\n")
    joined = " ".join(text)
    for chunk in _chunks(chunk_files):
        words = " ".join(vocab[i] for i in chunk).replace(" ##", "")
        assert words in joined
    sharded, shard_files = _build(corpus, "chunk_shards", masking="dynamic", pairing="dynamic",
                                  num_output_shards=2, num_workers=2)
    assert len(shard_files) == 2 and sharded.corpus.documents == 40
    assert sorted(_chunks(shard_files)) != [] and sharded.instances == len(_chunks(shard_files))
    implied, _ = _build(corpus, "implied.tfrecord", pairing="dynamic")  # masks drawn when read
    assert implied.masked_tokens == 0 and implied.instances == chunks.instances


def test_each_read_of_a_chunk_gets_a_fresh_pair_and_fresh_masks(corpus):
    _, files = _build(corpus, "fresh_chunks.tfrecord", masking="dynamic", pairing="dynamic")
    chunks = _chunks(files)
    assert record_checks.dynamic_pairing_of(files).sep_id == 3
    at = lambda chunk, part: [k for k in range(len(chunk) - len(part) + 1)
                              if chunk[k:k + len(part)] == part]
    contains = lambda chunk, part: bool(at(chunk, part))
    # B after A in the chunk: right after, unless truncation took tokens between them.
    follows = lambda chunk, a, b: any(j >= k + len(a) and (j == k + len(a)
                                                           or len(a) + len(b) == S - 3)
                                      for k in at(chunk, a) for j in at(chunk, b))
    pairs = {}
    labels = []
    for batch in _batches(files, seed=1, count=4 * len(chunks) // 8):
        assert batch["input_ids"].shape == (8, S) and batch["masked_lm_ids"].shape == (8, P)
        for row in range(8):
            a, b, label = _unmasked(batch, row)
            labels.append(label)
            home = [c for c in chunks if contains(c, a)]
            assert home  # A is a piece of a chunk ...
            if label == 0:  # ... and B follows it there, or is a piece of another chunk
                assert any(follows(c, a, b) for c in home)
            else:
                assert any(contains(c, b) for c in chunks)
            pairs.setdefault(home[0], set()).add((a, b))
    assert 0.4 < np.mean(labels) < 0.8  # half, and every one-sentence chunk
    # Chunks read four times over: most were made into more than one pair.
    assert sum(len(p) > 1 for p in pairs.values()) > 0.6 * len(pairs), len(pairs)


def test_a_random_next_sentence_comes_from_the_chunks_own_group(corpus, tmp_path):
    # Two groups (say two languages) of disjoint words, mixed 50/50 while training: the
    # builder draws a random B from its own input, and so does the pipeline, from its group.
    from norbert.training.mixing import Group

    root, _, vocab = corpus
    rng = random.Random(5)
    files = {}
    for name, words in (("low", WORDS[:30]), ("high", WORDS[30:60])):
        docs = ["\n".join(" ".join(rng.choice(words) for _ in range(6)) for _ in range(3))
                for _ in range(30)]
        (tmp_path / (name + ".txt")).write_text("\n\n".join(docs) + "\n")
        create_pretraining_data(input_file=str(tmp_path / (name + ".txt")),
                                output_file=str(tmp_path / (name + ".tfrecord")),
                                vocab_file=vocab, max_seq_length=S, max_predictions_per_seq=P,
                                pairing="dynamic", progress=False)
        files[name] = str(tmp_path / (name + ".tfrecord"))
    groups = tuple(Group(name, (path,), 30, 0.5) for name, path in files.items())
    half = lambda ids: {i - 5 < 30 for i in ids}  # ids 5.. are WORDS in order
    mixed = randoms = 0
    for out in _batches(list(files.values()), seed=2, count=20, batch_size=16, groups=groups,
                        shuffle_buffer=100):
        for row in range(16):
            a, b, label = _unmasked(out, row)
            assert len(half(a) | half(b)) == 1  # A and B from one group's text
            randoms += label
        mixed += len({next(iter(half(_unmasked(out, r)[0]))) for r in range(16)}) > 1
    assert randoms > 100 and mixed > 15  # random pairs tested, in batches of both groups


def test_chunks_and_pairs_are_not_mixed_and_chunks_need_their_sidecar(corpus, tmp_path):
    _, pair_files = _build(corpus, "mix_pairs.tfrecord", masking="dynamic")
    _, chunk_files = _build(corpus, "mix_chunks.tfrecord", masking="dynamic", pairing="dynamic")
    assert record_checks.dynamic_pairing_of(pair_files) is None
    with pytest.raises(NorbertError, match="--input_file mixes records built differently: "
                                           ".*sentence pairs.*pairing"):
        record_checks.dynamic_pairing_of(pair_files + chunk_files)
    orphan = tmp_path / "orphan_chunks.tfrecord"
    orphan.write_bytes(open(chunk_files[0], "rb").read())
    with pytest.raises(NorbertError, match="orphan_chunks.tfrecord holds records for chunks "
                                           "paired at training time but has no sidecar"):
        record_checks.dynamic_pairing_of([str(orphan)])


def test_pairs_from_chunks_are_distributed_as_the_references_pairs(tmp_path, corpus_paths,
                                                                   uncased_vocab_path):
    """On real text: the share of random next sentences and the segments' lengths of pairs
    made when read, against the builder's own pairs (the reference's rules) of the same text.
    A random B stops at its chunk's end and no sentence is put back: B runs a little shorter.
    The tolerances hold on documents of a dozen sentences or more: the shared English corpus's
    first 200 kB, or without the shared corpora the examples' sample text (66 kB; measured
    there: shares 0.572 vs 0.586, A 30.6 vs 29.2 tokens, B 26.1 vs 30.4)."""
    if has_shared_corpora(corpus_paths):
        with open(corpus_file("english", corpus_paths), "rb") as f:
            text = f.read(200000).rsplit(b"\n\n", 1)[0]
    else:
        with open(os.path.join(REPO, "examples", "sample_text.txt"), "rb") as f:
            text = f.read()
    s = 64
    rows = {}
    for name, settings in (("builder", dict(dupe_factor=3)), ("read", dict(pairing="dynamic"))):
        root = tmp_path / name
        root.mkdir()
        (root / "text.txt").write_bytes(text)
        create_pretraining_data(input_file=str(root / "text.txt"),
                                output_file=str(root / "train.tfrecord"),
                                vocab_file=uncased_vocab_path, max_seq_length=s,
                                max_predictions_per_seq=10, masking="dynamic", progress=False,
                                **settings)
        found = []
        for out in _batches([str(root / "train.tfrecord")], seed=1, count=40, batch_size=64,
                            s=s, p=10, shuffle_buffer=100):
            for row in range(64):
                segments = out["segment_ids"][row][:out["input_mask"][row].sum()]
                found.append((out["next_sentence_labels"][row][0],
                              (segments == 0).sum() - 2, (segments == 1).sum() - 1))
        rows[name] = np.array(found)  # [2560, 3]: label, len(A), len(B)
    ref, got = rows["builder"], rows["read"]
    assert abs(got[:, 0].mean() - ref[:, 0].mean()) < 0.04, (got[:, 0].mean(), ref[:, 0].mean())
    assert got[:, 1].mean() == pytest.approx(ref[:, 1].mean(), rel=0.05)
    assert got[:, 2].mean() == pytest.approx(ref[:, 2].mean(), rel=0.15)
    assert (got[:, 1:].sum(1) <= s - 3).all() and (got[:, 1:] >= 1).all()


@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
@pytest.mark.parametrize("engine, pairing", [
    ("loop", "static"), ("loop", "dynamic"), ("mirrored", "dynamic"), ("tpu_estimator", "dynamic"),
    # Chunk records go through the pair records' path and more: these two only in full runs.
    pytest.param("mirrored", "static", marks=pytest.mark.slow),
    pytest.param("tpu_estimator", "static", marks=pytest.mark.slow)])
def test_run_pretraining_trains_on_dynamic_records_and_evaluates_them_alike(corpus, tmp_path,
                                                                            engine, pairing):
    from norbert import run_pretraining
    from helpers import tiny_bert_config
    import reference_shim

    if engine == "tpu_estimator" and not reference_shim.has_estimator():
        pytest.skip("TPUEstimator needs tf.estimator (TensorFlow <= 2.15)")
    _, files = _build(corpus, "train_dynamic_%s.tfrecord" % pairing, masking="dynamic",
                      pairing=pairing)
    config = tmp_path / "bert_config.json"
    config.write_text(tiny_bert_config(vocab_size=len(WORDS) + 5))
    common = dict(input_file=files[0], bert_config_file=str(config), max_seq_length=S,
                  max_predictions_per_seq=P, eval_batch_size=8, max_eval_steps=4, seed=1)
    from norbert.training.distribution import DistributionConfig

    how = dict(engine="tpu_estimator") if engine == "tpu_estimator" else (
        dict(distribution=DistributionConfig(distribution="mirrored", num_cpu_replicas=2))
        if engine == "mirrored" else {})
    trained = run_pretraining(output_dir=str(tmp_path / "run"), do_train=True, do_eval=True,
                              train_batch_size=8, num_train_steps=3, num_warmup_steps=1,
                              **common, **how)
    assert trained["global_step"] == 3 and 0 < trained["masked_lm_loss"] < 10
    # evaluation draws the same masks every time: the numbers repeat exactly
    again = run_pretraining(output_dir=str(tmp_path / "run"), do_eval=True, **common)
    assert again["masked_lm_loss"] == pytest.approx(trained["masked_lm_loss"], rel=1e-6)


@pytest.mark.slow
def test_fresh_pairs_and_masks_learn_at_least_as_well_as_five_static_copies(tmp_path,
                                                                            corpus_paths):
    """The benchmark's experiment (benchmarks/dynamic_masking.py): the same steps and batch on
    static records (dupe_factor 5), on dynamic-mask records and on chunk records (dupe_factor
    1 both), one held-out set."""
    from helpers import load_benchmark

    bench = load_benchmark("dynamic_masking")
    results, pipelines = bench.compare(str(tmp_path), bench.STEPS)
    static = results["static"]
    for name in ("dynamic", "dynamic pairs"):
        assert results[name]["bytes"] <= static["bytes"] / bench.STATIC_DUPES
        assert pipelines[name] >= 10 * results[name]["rate"], (name, pipelines, results)
    # Fresh pairs as well as fresh masks: at least five static copies' accuracy.
    assert results["dynamic pairs"]["masked_lm_accuracy"] >= static["masked_lm_accuracy"]
