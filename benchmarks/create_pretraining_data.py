"""Pretraining-data builder: norbert vs Google's create_pretraining_data.py, whole processes.

Each tool runs as its own process on the same corpus, flags and seed; wall time covers
everything (interpreter start, imports, reading, tokenising, writing), and peak memory is the
child's own maximum resident set (``os.wait4``). The corpora: ../shared/data/*.txt (1.15 MB of
English, Norwegian, Chinese and Russian) and the same files repeated eight times (9.2 MB).
The records of the small run are checked to be identical.

The sharded mode (``--num_output_shards``/``--num_workers``, not reference-exact) is measured
on the same corpora with one and two workers, and its peak memory on the files repeated
``STREAM_COPIES / 2`` and ``STREAM_COPIES`` times (every line of each copy given a word of its
own, so that the tokeniser's caches see new words throughout), in the same blocks: bounded
memory means the two peaks are about the same. The load average of the machine is printed
with the figures, and CPU seconds beside wall seconds: on a shared machine wall time varies
with the load.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import REPO, corpus_files, table, uncased_vocab, varied_copies

SCRIPT = os.path.join(REPO, "scripts", "create_pretraining_data.py")
FLAGS = ["--max_seq_length=128", "--max_predictions_per_seq=20", "--dupe_factor=5",
         "--random_seed=12345", "--do_lower_case=True"]
STREAM_COPIES = int(os.environ.get("STREAM_COPIES", "48"))  # x 1.15 MB for the memory run


def run(cmd):
    """(wall seconds, peak RSS in MB, CPU seconds) of one child process and its children."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode:
        raise SystemExit("%s failed:\n%s" % (cmd[:3], stderr.decode()[-2000:]))
    return seconds, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime


def build(tool, inputs, output, extra=()):
    args = ["--input_file=" + ",".join(inputs), "--output_file=" + output,
            "--vocab_file=" + uncased_vocab()] + FLAGS + list(extra)
    for old in glob.glob(glob.escape(output) + "*"):  # else a sharded rerun resumes: no work
        os.remove(old)
    if tool == "reference":
        return run([sys.executable, "-m", "bert.create_pretraining_data"] + args)
    return run([sys.executable, SCRIPT, "--progress=false"] + args)


def sharded(workers):
    return ["--num_output_shards=2", "--num_workers=%d" % workers]


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


def same_records(a, b):
    from norbert.data import tfrecord

    ra, rb = list(tfrecord.read_records(a)), list(tfrecord.read_records(b))
    return len(ra) == len(rb) and all(
        tfrecord.decode_example(x) == tfrecord.decode_example(y) for x, y in zip(ra, rb)
    ), len(ra)


def main():
    from google.protobuf.internal import api_implementation

    work = tempfile.mkdtemp(prefix="bench_cpd_")
    try:
        small = corpus_files()
        big = []
        for copy in range(8):
            for path in small:
                dest = os.path.join(work, "%d_%s" % (copy, os.path.basename(path)))
                shutil.copyfile(path, dest)
                big.append(dest)
        rows = []
        loads = []
        checked = 0
        for label, inputs, repeat in (("1.15 MB", small, 2), ("9.2 MB", big, 1)):
            megabytes = sum(os.path.getsize(p) for p in inputs) / 1e6
            results = {}
            tag = label.split()[0]
            for tool, extra in (("reference", ()), ("norbert", ()),
                                ("sharded-1", sharded(1)), ("sharded-2", sharded(2))):
                output = os.path.join(work, "%s_%s.tfrecord" % (tool, tag))
                loads.append(load())
                results[tool] = min(build(tool.split("-")[0], inputs, output, extra)
                                    for _ in range(repeat))
            ref_s = results["reference"][0]
            if label == "1.15 MB":
                same, n = same_records(os.path.join(work, "reference_1.15.tfrecord"),
                                       os.path.join(work, "norbert_1.15.tfrecord"))
                if not same:
                    raise SystemExit("norbert's records differ from the reference's")
                checked = n
            names = {
                "reference": "Google's create_pretraining_data.py (bert-tensorflow 1.0.4)",
                "norbert": "norbert, reference-exact",
                "sharded-1": "norbert, sharded, `--num_workers=1`",
                "sharded-2": "norbert, sharded, `--num_workers=2`",
            }
            ref_cpu = results["reference"][2]
            for tool, (s, mb, cpu) in results.items():
                rows.append((label, names[tool], "%.1f" % s, "%.2f" % (megabytes / s),
                             "%.0f" % mb, "%.1fx" % (ref_s / s), "%.1f" % cpu,
                             "%.1fx" % (ref_cpu / cpu)))
        # Memory: the same full blocks (--block_mb=4) on the corpus STREAM_COPIES/2 and
        # STREAM_COPIES times, both enough to fill the tokeniser's bounded caches.
        stream = []
        for copies in (STREAM_COPIES // 2, STREAM_COPIES):
            inputs = varied_copies(small, work, copies)
            loads.append(load())
            stream.append((sum(os.path.getsize(p) for p in inputs) / 1e6,)
                          + build("norbert", inputs, os.path.join(work, "stream.tfrecord"),
                                  ["--num_output_shards=2", "--num_workers=1", "--block_mb=4"]))
            for p in inputs:
                os.remove(p)
        loads.append(load())
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("## Pretraining data builder\n")
    print(
        "Text to TFRecord files of masked-LM/next-sentence records, "
        "`--max_seq_length=128 --max_predictions_per_seq=20 --dupe_factor=5`, uncased 30,522-token "
        "vocab; each tool a whole process (start-up, imports, reading, tokenising, writing), "
        "best of %d runs on the 1.15 MB corpus (`../shared/data/*.txt`) and one run on those "
        "files repeated eight times. Peak memory is the largest process's maximum resident set. "
        "The reference uses protobuf's %s backend (its fastest). The reference and norbert's "
        "reference-exact mode wrote identical records (%d checked, parsed value by value). "
        "The sharded mode (`--num_output_shards=2`, default `--block_mb=8`) is not "
        "reference-exact. Load average (1, 5, 15 min) before each run: %s. "
        "Command: `python benchmarks/run_all.py create_pretraining_data`.\n"
        % (2, api_implementation.Type(), checked, "; ".join(loads[:-3]))
    )
    print(table(["corpus", "builder", "seconds", "MB/s", "peak RSS (MB)", "vs reference",
                 "CPU seconds", "vs reference (CPU)"], rows))
    print(
        "\nCPU seconds are user + system time of the process and its workers: on a loaded "
        "machine they show the work done, where wall time shows the load.\n"
    )
    print(
        "Streaming memory, the sharded mode with `--num_output_shards=2 --num_workers=1 "
        "--block_mb=4` on the corpus repeated, each copy's lines given words of their own (so "
        "the tokeniser's bounded caches fill as on real text): %s. Load average before each "
        "run and after: %s.\n"
        % ("; ".join("%.0f MB of text in %.0f s (%.2f MB/s), peak RSS %.0f MB"
                     % (mb, s, mb / s, rss) for mb, s, rss, _ in stream),
           "; ".join(loads[-3:]))
    )


if __name__ == "__main__":
    main()
