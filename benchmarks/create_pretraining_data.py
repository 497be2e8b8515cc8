"""Pretraining-data builder: norbert vs Google's create_pretraining_data.py, whole processes.

Each tool runs as its own process on the same corpus, flags and seed; wall time covers
everything (interpreter start, imports, reading, tokenising, writing), and peak memory is the
child's own maximum resident set (``os.wait4``). The corpora: ../shared/data/*.txt (1.15 MB of
English, Norwegian, Chinese and Russian) and the same files repeated eight times (9.2 MB).
The records of the small run are checked to be identical.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import REPO, corpus_files, table, uncased_vocab

SCRIPT = os.path.join(REPO, "scripts", "create_pretraining_data.py")
FLAGS = ["--max_seq_length=128", "--max_predictions_per_seq=20", "--dupe_factor=5",
         "--random_seed=12345", "--do_lower_case=True"]


def run(cmd):
    """(wall seconds, peak RSS in MB) of one child process."""
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
    return seconds, usage.ru_maxrss / 1024.0


def build(tool, inputs, output):
    args = ["--input_file=" + ",".join(inputs), "--output_file=" + output,
            "--vocab_file=" + uncased_vocab()] + FLAGS
    if tool == "reference":
        return run([sys.executable, "-m", "bert.create_pretraining_data"] + args)
    return run([sys.executable, SCRIPT] + args)


def same_records(a, b):
    from norbert import tfrecord

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
        for label, inputs, repeat in (("1.15 MB", small, 2), ("9.2 MB", big, 1)):
            megabytes = sum(os.path.getsize(p) for p in inputs) / 1e6
            results = {}
            for tool in ("reference", "norbert"):
                output = os.path.join(work, "%s_%s.tfrecord" % (tool, label.split()[0]))
                results[tool] = min(build(tool, inputs, output) for _ in range(repeat))
            ref_s, ref_mb = results["reference"]
            our_s, our_mb = results["norbert"]
            if label == "1.15 MB":
                same, n = same_records(os.path.join(work, "reference_1.15.tfrecord"),
                                       os.path.join(work, "norbert_1.15.tfrecord"))
                if not same:
                    raise SystemExit("norbert's records differ from the reference's")
                checked = n
            for tool, (s, mb) in results.items():
                name = ("Google's create_pretraining_data.py (bert-tensorflow 1.0.4)"
                        if tool == "reference" else "norbert scripts/create_pretraining_data.py")
                rows.append((label, name, "%.1f" % s, "%.2f" % (megabytes / s),
                             "%.0f" % mb, "%.1fx" % (ref_s / s)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("## Pretraining data builder\n")
    print(
        "Text to TFRecord files of masked-LM/next-sentence records, reference-exact mode, "
        "`--max_seq_length=128 --max_predictions_per_seq=20 --dupe_factor=5`, uncased 30,522-token "
        "vocab; each tool a whole process (start-up, imports, reading, tokenising, writing), "
        "best of %d runs on the 1.15 MB corpus (`../shared/data/*.txt`) and one run on those "
        "files repeated eight times. Peak memory is each process's maximum resident set. The "
        "reference uses protobuf's %s backend (its fastest). Both wrote identical records "
        "(%d checked, parsed value by value). "
        "Command: `python benchmarks/run_all.py create_pretraining_data`.\n"
        % (2, api_implementation.Type(), checked)
    )
    print(table(["corpus", "builder", "seconds", "MB/s", "peak RSS (MB)", "vs reference"], rows))


if __name__ == "__main__":
    main()
