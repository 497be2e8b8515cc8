"""The sharded data builder: shard seeds, determinism whatever the number of workers, resuming
after kill -9, memory that does not grow with the corpus, its flags. (The input's slices:
test_slices.py.)"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import (DOCUMENTS, REPO, SHARED_BYTES, build_output, has_shared_corpora,
                     scaled)
from norbert.data import tfrecord
from norbert.data.documents import read_documents
from norbert.errors import NorbertError
from norbert.data.builder import DataConfig, create_pretraining_data
from norbert.data.sharded import shard_seed

SCRIPT = os.path.join(REPO, "scripts", "create_pretraining_data.py")


def encode(text):
    """A stand-in tokeniser: one id per whitespace word (its length), none for symbols only."""
    return [len(w) for w in text.split() if any(c.isalnum() for c in w)]


# -- shard seeds ----------------------------------------------------------------------------


def test_shard_seeds_differ_and_are_stable():
    assert shard_seed(12345, 0) != shard_seed(12345, 1) != shard_seed(1, 1)
    assert shard_seed(12345, 3) == shard_seed(12345, 3)


# -- whole builds ---------------------------------------------------------------------------


def _config(inputs, output, vocab, **kw):
    flags = dict(dupe_factor=1, max_seq_length=128, max_predictions_per_seq=20)
    flags.update(kw)
    return DataConfig(input_file=",".join(inputs), output_file=output, vocab_file=vocab, **flags)


def _records(path):
    return list(tfrecord.read_records(path))


def _scale(paths):
    """1 when ``paths`` hold the shared corpora (the figures below are theirs), else the
    shipped text's size over theirs: block sizes scaled by it cut the smaller text into as
    many blocks."""
    if has_shared_corpora(paths):
        return 1.0
    return sum(os.path.getsize(p) for p in paths) / SHARED_BYTES


def test_shards_sidecars_and_counts(corpus_paths, uncased_vocab_path, tmp_path):
    out = str(tmp_path / "train.tfrecord")
    summary = create_pretraining_data(
        _config(corpus_paths, out, uncased_vocab_path, num_output_shards=3, num_workers=1,
                block_mb=0.2 * _scale(corpus_paths)))
    names = ["train.tfrecord-%05d-of-00003" % i for i in range(3)]
    assert sorted(os.listdir(str(tmp_path))) == sorted(
        names + [n + ".meta.json" for n in names] + ["train.tfrecord.meta.json"])
    documents = sum(DOCUMENTS[os.path.basename(p)] for p in corpus_paths)  # 809 shared
    assert summary.corpus.documents == len(read_documents(corpus_paths, encode)) == documents
    whole = json.loads((tmp_path / "train.tfrecord.meta.json").read_text(encoding="utf-8"))
    assert whole["shard_set"] and whole["counts"]["documents"] == documents
    assert whole["records_per_file"] == summary.records_per_file
    total = 0
    for i, name in enumerate(names):
        meta = json.loads((tmp_path / (name + ".meta.json")).read_text(encoding="utf-8"))
        records = _records(str(tmp_path / name))
        assert meta["settings"]["mode"] == "sharded"
        assert meta["settings"]["num_output_shards"] == 3 and meta["shard_index"] == i
        assert meta["instances_in_file"] == meta["counts"]["instances"] == len(records)
        assert len(records) > scaled(1000, corpus_paths)
        assert meta["bytes_in_file"] == os.path.getsize(str(tmp_path / name))
        total += len(records)
        for record in records[:50]:
            ex = tfrecord.decode_example(record)
            n = sum(ex["input_mask"])
            assert ex["input_ids"][0] == 101 and ex["input_ids"][n - 1] == 102  # [CLS] .. [SEP]
            assert len(ex["input_ids"]) == 128 and len(ex["masked_lm_ids"]) == 20
    assert total == summary.instances == sum(summary.records_per_file)


def test_the_number_of_workers_does_not_change_the_records(corpus_paths, uncased_vocab_path,
                                                           tmp_path):
    outs = []
    for workers in (1, 2):
        folder = tmp_path / ("w%d" % workers)
        folder.mkdir()
        outs.append(str(folder / "t.tfrecord"))
        create_pretraining_data(_config(corpus_paths, outs[-1], uncased_vocab_path,
                                        num_output_shards=3, num_workers=workers,
                                        block_mb=0.3 * _scale(corpus_paths),
                                        do_whole_word_mask=True))
    for i in range(3):
        suffix = "-%05d-of-00003" % i
        with open(outs[0] + suffix, "rb") as a, open(outs[1] + suffix, "rb") as b:
            assert a.read() == b.read()
    # Another seed, other records.
    folder = tmp_path / "seed"
    folder.mkdir()
    other = str(folder / "t.tfrecord")
    create_pretraining_data(_config(corpus_paths, other, uncased_vocab_path,
                                    num_output_shards=3, num_workers=1,
                                    block_mb=0.3 * _scale(corpus_paths),
                                    do_whole_word_mask=True, random_seed=1))
    with open(outs[0] + "-00000-of-00003", "rb") as a, open(other + "-00000-of-00003", "rb") as b:
        assert a.read() != b.read()


def test_a_rerun_keeps_complete_shards_and_rebuilds_changed_ones(corpus_paths,
                                                                 uncased_vocab_path, tmp_path):
    out = str(tmp_path / "t.tfrecord")
    config = _config(corpus_paths[:1], out, uncased_vocab_path, num_output_shards=2,
                     num_workers=1)
    first = create_pretraining_data(config)
    shard = out + "-00001-of-00002"
    mtime = os.stat(shard).st_mtime_ns
    again = create_pretraining_data(config)
    assert again.shards_skipped == 2 and os.stat(shard).st_mtime_ns == mtime
    assert again.instances == first.instances and "2 already complete" in again.line()
    # A shard whose sidecar is gone, or whose settings differ, is built again.
    os.remove(shard + ".meta.json")
    assert create_pretraining_data(config).shards_skipped == 1
    changed = _config(corpus_paths[:1], out, uncased_vocab_path, num_output_shards=2,
                      num_workers=1, random_seed=7)
    assert create_pretraining_data(changed).shards_skipped == 0


def _tail(path):
    return open(path, "rb").read()


def test_kill_9_then_rerun_gives_the_uninterrupted_output(corpus_paths, uncased_vocab_path,
                                                          tmp_path):
    def argv(out):
        return [sys.executable, SCRIPT, "--input_file=" + ",".join(corpus_paths),
                "--output_file=" + out, "--vocab_file=" + uncased_vocab_path,
                "--dupe_factor=1", "--num_output_shards=4", "--num_workers=2",
                "--block_mb=%g" % (0.05 * _scale(corpus_paths)), "--progress=false"]

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    clean = str(tmp_path / "a" / "t.tfrecord")
    done = subprocess.run(argv(clean), cwd=REPO, stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert done.returncode == 0, done.stderr[-2000:]

    out = str(tmp_path / "b" / "t.tfrecord")
    env = dict(os.environ, NORBERT_TEST_BLOCK_DELAY="0.15")
    proc = subprocess.Popen(argv(out), cwd=REPO, env=env, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    folder = str(tmp_path / "b")
    finals = ["t.tfrecord-%05d-of-00004" % i for i in range(4)]
    deadline = time.time() + 60
    seen_tmp = False
    try:
        while time.time() < deadline:
            names = os.listdir(folder)
            seen_tmp = seen_tmp or any(".tmp-" in n for n in names)
            for name in finals:  # whatever is under a final name is whole
                if name in names:
                    try:
                        _records(os.path.join(folder, name))
                    except FileNotFoundError:
                        pass
            if any(n.endswith(".meta.json") for n in names):
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the builder and its workers
        proc.wait()
    names = os.listdir(folder)
    complete = [n for n in finals if n + ".meta.json" in names]
    assert seen_tmp and 1 <= len(complete) < 4, names
    for name in finals:
        if name in names:
            _records(os.path.join(folder, name))
    kept = {n: os.stat(os.path.join(folder, n)).st_mtime_ns for n in complete}

    done = subprocess.run(argv(out), cwd=REPO, stderr=subprocess.PIPE, universal_newlines=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "already complete" in done.stderr
    assert sorted(os.listdir(folder)) == sorted(
        finals + [n + ".meta.json" for n in finals] + ["t.tfrecord.meta.json"])
    for name in finals:
        assert _tail(os.path.join(folder, name)) == _tail(os.path.join(str(tmp_path / "a"), name))
    for name, mtime in kept.items():
        assert os.stat(os.path.join(folder, name)).st_mtime_ns == mtime


_PEAK = (
    "import resource, sys\n"
    "from norbert.data.builder import DataConfig, create_pretraining_data\n"
    "create_pretraining_data(DataConfig(input_file=sys.argv[1], output_file=sys.argv[2],\n"
    "    vocab_file=sys.argv[3], dupe_factor=2, num_output_shards=2, num_workers=1,\n"
    "    block_mb=0.1))\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


def test_memory_does_not_grow_with_the_corpus(corpus_paths, uncased_vocab_path, tmp_path):
    """Peak RSS on 1x and 6x the corpus (1.15 MB, 6.9 MB) in blocks of 0.1 MB."""
    big = []
    for copy in range(6):
        for path in corpus_paths:
            dest = tmp_path / ("%d_%s" % (copy, os.path.basename(path)))
            dest.write_bytes(open(path, "rb").read())
            big.append(str(dest))
    peaks = []
    for inputs in (corpus_paths, big):
        done = subprocess.run(
            [sys.executable, "-c", _PEAK, ",".join(inputs), str(tmp_path / "o.tfrecord"),
             uncased_vocab_path], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            universal_newlines=True)
        assert done.returncode == 0, done.stderr[-2000:]
        peaks.append(int(done.stdout.split()[-1]) / 1024.0)  # MB
    small, large = peaks
    print("peak RSS (MB): %.1f on 1x, %.1f on 6x" % (small, large))
    assert large < small + 12, peaks  # 6x the text, the same peak (a flat profile)


# -- flags ----------------------------------------------------------------------------------


@pytest.mark.parametrize("flags, expected", [
    (dict(num_output_shards=0), "--num_output_shards=0 must be between 1 and 99999"),
    (dict(num_output_shards=100000), "--num_output_shards=100000"),
    (dict(num_workers=0), "--num_workers=0 must be at least 1"),
    (dict(num_workers=2, block_mb=0.0), "--block_mb=0.0 must be positive"),
])
def test_bad_settings_name_the_flag(flags, expected):
    with pytest.raises(NorbertError) as e:
        DataConfig(input_file="x", output_file="o", vocab_file="v", **flags)
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_sharded_mode_wants_one_output_name():
    with pytest.raises(NorbertError, match="--output_file names 2 files"):
        DataConfig(input_file="x", output_file="a,b", vocab_file="v", num_workers=2)


def test_modes_and_defaults():
    base = dict(input_file="x", output_file="o", vocab_file="v")
    assert DataConfig(**base).mode == "reference-exact"
    assert DataConfig(**base).output_files == ["o"]
    c = DataConfig(num_workers=3, **base)
    assert c.mode == "sharded" and c.shards == 3 and c.workers == 3
    assert c.output_files == ["o-00000-of-00003", "o-00001-of-00003", "o-00002-of-00003"]
    c = DataConfig(num_output_shards=4, do_whole_word_mask=True, whole_word_mask_per_word=True,
                   **base)
    assert c.mode == "sharded+whole-word-per-word"
    assert 1 <= c.workers <= 4
    assert DataConfig(num_output_shards=2, num_workers=8, **base).workers == 2


def test_script_bad_shards_flag_is_one_line(tmp_path, make_vocab):
    text = tmp_path / "t.txt"
    text.write_text("a b .\n\nb a .\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, SCRIPT, "--input_file=%s" % text, "--output_file=%s/o" % tmp_path,
         "--vocab_file=" + make_vocab(["a", "b", "."]), "--num_output_shards=0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert done.returncode == 2
    assert "error: --num_output_shards=0 must be between 1 and 99999" in done.stderr
    assert "Traceback" not in done.stderr


def test_url_paths_in_and_out_give_the_local_records(corpus_paths, uncased_vocab_path,
                                                     tmp_path):
    """gs:// and friends go through tf.io.gfile: TF's in-memory ram:// stands in for them.

    One worker builds in this process, where the ram:// files live; a resumed run must see the
    complete shards there too.
    """
    tf = pytest.importorskip("tensorflow")
    remote_inputs = []
    for i, path in enumerate(corpus_paths[:2]):
        remote_inputs.append("ram://norbert-sharded/in/%d_%s" % (i, os.path.basename(path)))
        tf.io.gfile.copy(path, remote_inputs[-1], overwrite=True)
    local = str(tmp_path / "t.tfrecord")
    remote = "ram://norbert-sharded/out/t.tfrecord"
    for inputs, out in ((corpus_paths[:2], local), (remote_inputs, remote)):
        summary = create_pretraining_data(_config(inputs, out, uncased_vocab_path,
                                                  num_output_shards=2, num_workers=1,
                                                  block_mb=0.2))
    assert summary.shards_skipped == 0 and summary.instances > 0
    for i in range(2):
        suffix = "-%05d-of-00002" % i
        with open(local + suffix, "rb") as f, tf.io.gfile.GFile(remote + suffix, "rb") as g:
            assert f.read() == g.read()
        assert tf.io.gfile.exists(remote + suffix + ".meta.json")
    assert sorted(tf.io.gfile.listdir("ram://norbert-sharded/out")) == sorted(
        ["t.tfrecord-%05d-of-00002%s" % (i, ext) for i in range(2) for ext in ("", ".meta.json")]
        + ["t.tfrecord.meta.json"])
    again = create_pretraining_data(_config(remote_inputs, remote, uncased_vocab_path,
                                            num_output_shards=2, num_workers=1, block_mb=0.2))
    assert again.shards_skipped == 2


# -- the planner's version, and --plan_only --------------------------------------------------


def as_first_planner(folder):
    """Makes the shard sidecars in ``folder`` those the first planner wrote (no version)."""
    for name in os.listdir(str(folder)):
        if name.endswith(".meta.json") and "-of-" in name:
            meta = json.loads((folder / name).read_text(encoding="utf-8"))
            assert meta["settings"].pop("planner") == 2
            (folder / name).write_text(json.dumps(meta), encoding="utf-8")


def test_shards_of_the_first_planner_are_rebuilt_saying_why(corpus_paths, uncased_vocab_path,
                                                            tmp_path, caplog):
    for shards in (2, 1):
        folder = tmp_path / ("k%d" % shards)
        config = _config(corpus_paths[:1], str(folder / "t.tfrecord"), uncased_vocab_path,
                         num_output_shards=shards, num_workers=1, progress=False)
        create_pretraining_data(config)
        expected = build_output(folder)
        as_first_planner(folder)
        caplog.clear()
        with caplog.at_level("INFO"):
            again = create_pretraining_data(config)
        said = [r.getMessage() for r in caplog.records if "planner" in r.getMessage()]
        if shards == 2:
            assert again.shards_skipped == 0 and len(said) == 1
            assert said[0].startswith("2 shard(s) of %s were cut by input planner 1, this "
                                      "build's is 2" % config.output_base)
            assert build_output(folder) == expected  # rebuilt: the version recorded
        else:  # one shard: the whole input, cut alike by both planners: kept
            assert again.shards_skipped == 1 and not said


def test_plan_only_prints_the_plan_and_writes_nothing(corpus_paths, uncased_vocab_path,
                                                      tmp_path):
    out = tmp_path / "out" / "t.tfrecord"
    done = subprocess.run(
        [sys.executable, SCRIPT, "--input_file=" + ",".join(corpus_paths),
         "--output_file=%s" % out, "--vocab_file=" + uncased_vocab_path,
         "--num_output_shards=3", "--plan_only", "--dupe_factor=2"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "out").exists()
    lines = done.stdout.splitlines()
    total = sum(os.path.getsize(p) for p in corpus_paths)
    assert lines[0].startswith("plan (planner 2): 3 shard(s) of %s" % corpus_paths[0])
    assert "{:,} byte(s)".format(total) in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == ["  shard %05d" % k for k in range(3)]
    shard_bytes = [int(line.split(": ")[1].split(" ")[0].replace(",", "")) for line in lines[1:]]
    assert sum(shard_bytes) == total and max(shard_bytes) - min(shard_bytes) <= 1
    # The estimate is of the right size: the build's records, within a factor of 2.
    estimate = int(lines[0].split("about ")[1].split(" ")[0].replace(",", ""))
    built = create_pretraining_data(_config(corpus_paths, str(out), uncased_vocab_path,
                                            num_output_shards=3, dupe_factor=2,
                                            progress=False))
    assert built.instances / 2 < estimate < built.instances * 2, (estimate, built.instances)
    with pytest.raises(NorbertError, match="--plan_only prints the plan of a sharded"):
        _config(corpus_paths, str(out), uncased_vocab_path, plan_only=True)
