"""Planning a sharded (or Beam) data build: bytes read and time, against the input's size.

Generates ``PLAN_GB`` gigabytes (default 2.1) of text on local disk (under /tmp, in 8 files:
the shared corpus repeated, each copy's lines given words of their own; deleted after), then in
a fresh process plans it (``norbert.data.slices.plan_shards``) for several shard counts and
measures the bytes that process read, from ``/proc/self/io``, and the wall time. ``rchar``
(bytes passed by read calls, whether from disk or the page cache) is the figure: the files were
just written, so they sit in the page cache and ``read_bytes`` (bytes fetched from the block
device) would say 0 whatever the planner read. It is shown too. The peer is one pass over the
input's bytes alone (16 MB reads, no line parsing): the least any planner that reads the input
costs (the first planner read every byte, and parsed its lines).

Then ``create_pretraining_data.py --plan_only`` on the same input, a whole process (start-up,
imports, the vocab, the plan and its 64 KB sample for the estimate of records): wall time.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import REPO, corpus_files, table, uncased_vocab

PLAN_GB = float(os.environ.get("PLAN_GB", "2.1"))
FILES = 8
SHARDS = (16, 1024, 65536)
SCRIPT = os.path.join(REPO, "scripts", "create_pretraining_data.py")

# Run in a fresh process: its /proc/self/io counts the planner's reads alone (after imports).
PROBE = r"""
import json, sys, time
from norbert.data.slices import plan_shards

def io():
    with open("/proc/self/io") as f:
        return dict((k, int(v)) for k, v in (line.split(":") for line in f))

paths = sys.argv[2:]
io()  # the probe's own first read, out of the figures
calibrate = io()
before = io()  # less what reading /proc/self/io itself costs (the same on each read)
own = {k: before[k] - calibrate[k] for k in before}
start = time.perf_counter()
plan = plan_shards(paths, int(sys.argv[1]))
seconds = time.perf_counter() - start
after = io()
print(json.dumps(dict(seconds=seconds, rchar=after["rchar"] - before["rchar"] - own["rchar"],
                      read_bytes=after["read_bytes"] - before["read_bytes"],
                      syscr=after["syscr"] - before["syscr"] - own["syscr"],
                      total=plan.total_bytes,
                      cuts=len(set(plan.cuts)))))
"""


def generate(work: str) -> list:
    """``FILES`` text files of ``PLAN_GB`` GB together: copies of the shared corpus, each
    copy's lines prefixed by a word of its own (no two documents alike)."""
    text = b"".join(open(p, "rb").read() for p in corpus_files())
    lines = text.split(b"\n")
    per_file = int(PLAN_GB * 1e9 / FILES) + 1
    paths = []
    copy = 0
    for i in range(FILES):
        path = os.path.join(work, "part%02d.txt" % i)
        written = 0
        with open(path, "wb") as f:
            while written < per_file:
                block = b"\n".join(b"c%dl%d %s" % (copy, n, line) if line.strip() else line
                                   for n, line in enumerate(lines))
                f.write(block)
                written += len(block)
                copy += 1
        paths.append(path)
    return paths


def compressed_and_parquet(work: str) -> list:
    """4 .gz files and 4 Parquet files (row groups of 500 rows) of the shared corpus."""
    import gzip

    import pyarrow
    import pyarrow.parquet

    text = b"".join(open(p, "rb").read() for p in corpus_files())
    documents = [d for d in text.decode("utf-8").split("\n\n") if d.strip()]
    paths = []
    for i in range(4):
        path = os.path.join(work, "part%02d.txt.gz" % i)
        with open(path, "wb") as f:
            f.write(gzip.compress(text))
        paths.append(path)
        path = os.path.join(work, "part%02d.parquet" % i)
        table = pyarrow.table({"text": pyarrow.array(documents * 4)})
        pyarrow.parquet.write_table(table, path, row_group_size=500)
        paths.append(path)
    return paths


def lines_pass(paths: list) -> float:
    """Seconds to read every line once and test it for a blank line: the first planner's
    work on each line (it also kept document starts)."""
    from norbert.data.slices import _is_blank

    start = time.perf_counter()
    for path in paths:
        with open(path, "rb") as f:
            for raw in f:
                _is_blank(raw)
    return time.perf_counter() - start


def probe(paths: list, shards: int) -> dict:
    import json

    env = dict(os.environ, PYTHONPATH=REPO)
    out = subprocess.run([sys.executable, "-c", PROBE, str(shards)] + paths, env=env,
                         cwd=REPO, check=True, stdout=subprocess.PIPE, universal_newlines=True)
    return json.loads(out.stdout)


def one_pass(paths: list) -> float:
    """Seconds to read every byte once, 16 MB at a time."""
    start = time.perf_counter()
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.read(16 << 20):
                pass
    return time.perf_counter() - start


def plan_only(paths: list) -> float:
    out = os.path.join(os.path.dirname(paths[0]), "out", "train.tfrecord")
    start = time.perf_counter()
    subprocess.run([sys.executable, SCRIPT, "--input_file=" + ",".join(paths),
                    "--output_file=" + out, "--vocab_file=" + uncased_vocab(),
                    "--num_output_shards=1024", "--plan_only"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return time.perf_counter() - start


def main() -> None:
    work = tempfile.mkdtemp(prefix="norbert-plan-", dir="/tmp")
    try:
        paths = generate(work)
        size = sum(os.path.getsize(p) for p in paths)
        mixed = paths + compressed_and_parquet(work)
        rows = []
        for name, inputs in (("%d text files" % len(paths), paths),
                             ("the same, 4 .gz and 4 Parquet files more", mixed)):
            size = sum(os.path.getsize(p) for p in inputs)
            for shards in SHARDS:
                got = probe(inputs, shards)
                assert got["cuts"] > min(shards, 100), got
                rows.append([name, "%.2f" % (size / 1e9), "%d" % shards,
                             "{:,}".format(got["rchar"]),
                             "%.6f%%" % (100.0 * got["rchar"] / size),
                             "{:,}".format(got["syscr"]), "%.4f" % got["seconds"]])
        passed = one_pass(paths)
        per_line = lines_pass(paths)
        whole = plan_only(paths)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("## Planning a data build from metadata\n")
    print("The sharded and Beam builds' planner (`norbert.data.slices.plan_shards`) on "
          "generated text on local disk (the shared corpus repeated, each copy's lines given "
          "words of their own), then with 4 .gz files (their 4-byte trailers read) and 4 "
          "Parquet files (their footers read) more. Bytes read are the planning process's "
          "`rchar` from `/proc/self/io`, less what reading that file itself adds: bytes "
          "passed by read calls, from the disk or the page cache alike (the files were just "
          "written, so `read_bytes`, bytes fetched from the disk, would say 0 whatever was "
          "read); read calls are `syscr`. Command: `python benchmarks/run_all.py plan_data` "
          "(`PLAN_GB=` sets the size).\n")
    print(table(["input", "GB", "shards", "bytes read (rchar)", "share of the input",
                 "read calls", "seconds"], rows))
    print("\nThe peers, on the %d text files: one pass reading each line and testing it for a "
          "blank line (the first planner's work on each line, which also kept document "
          "starts): %.1f s; one pass over the bytes alone (16 MB reads from the page cache, "
          "no line parsing: the least any planner that reads the input costs): %.1f s. The "
          "whole `create_pretraining_data.py --plan_only --num_output_shards=1024` process "
          "on them (start-up, imports, the vocab, the plan and its 64 KB sample for the "
          "estimate of records): %.1f s." % (len(paths), per_line, passed, whole))


if __name__ == "__main__":
    main()
