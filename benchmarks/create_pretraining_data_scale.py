"""The sharded data builder on about a gigabyte of text: time and memory of the whole run.

The reference keeps every document and instance in memory, so it is not run at this size (on the
9.2 MB corpus of ``create_pretraining_data.py`` it already peaks near 1 GB). norbert's sharded
mode runs with its defaults (``--block_mb=8``) and two workers on ``SCALE_MB`` megabytes (default
1000) made of the ``../shared/data`` files repeated, each copy's lines given words of their own so
that the tokeniser's bounded caches fill as on real text. Memory is the peak of the *sum* of the
resident sets of the main process and its workers, sampled every 0.2 s from ``/proc`` (an upper
bound: pages shared after ``fork`` count once per process). The same is measured at a tenth of
the size, and the larger run's speed and peak memory are given as ratios to it: bounded
memory means a peak ratio near 1 for ten times the text.
"""

import math
import os
import shutil
import sys
import tempfile

from common import REPO, corpus_files, run_measured, table, uncased_vocab, varied_copies

SCRIPT = os.path.join(REPO, "scripts", "create_pretraining_data.py")
SCALE_MB = float(os.environ.get("SCALE_MB", "1000"))
FLAGS = ["--max_seq_length=128", "--max_predictions_per_seq=20", "--dupe_factor=5",
         "--random_seed=12345", "--do_lower_case=True", "--num_workers=2",
         "--num_output_shards=16", "--progress=false"]


def main():
    work = tempfile.mkdtemp(prefix="bench_scale_")
    rows = []
    loads = []
    first = None  # (MB, seconds, peak MB) of the smaller run: the ratios' base
    try:
        small = corpus_files()
        small_mb = sum(os.path.getsize(p) for p in small) / 1e6
        for megabytes in (SCALE_MB / 10, SCALE_MB):
            text_dir = os.path.join(work, "text")
            os.makedirs(text_dir)
            inputs = varied_copies(small, text_dir, math.ceil(megabytes / small_mb))
            real_mb = sum(os.path.getsize(p) for p in inputs) / 1e6
            out_dir = os.path.join(work, "out")
            os.makedirs(out_dir)
            loads.append("%.2f %.2f %.2f" % os.getloadavg())
            # A glob, not the list: a thousand paths would pass the kernel's limit on one argument.
            seconds, peak, cpu = run_measured(
                [sys.executable, SCRIPT, "--input_file=" + os.path.join(text_dir, "*.txt"),
                 "--output_file=" + os.path.join(out_dir, "data.tfrecord"),
                 "--vocab_file=" + uncased_vocab()] + FLAGS)
            out_mb = sum(os.path.getsize(os.path.join(out_dir, f))
                         for f in os.listdir(out_dir)) / 1e6
            first = first or (real_mb, seconds, peak)
            rows.append(("%.0f" % real_mb, "%.0f" % seconds, "%.2f" % (real_mb / seconds),
                         "%.2fx" % ((real_mb / seconds) / (first[0] / first[1])), "%.0f" % cpu,
                         "%.0f" % peak, "%.2fx" % (peak / first[2]), "%.0f" % out_mb))
            shutil.rmtree(out_dir)
            shutil.rmtree(text_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("## Pretraining data builder at scale\n")
    print(
        "The sharded mode with two workers (`--num_workers=2 --num_output_shards=16`, default "
        "`--block_mb=8`; seq 128, `--dupe_factor=5`, uncased 30,522-token vocab) on the shared "
        "corpus repeated up to the size shown, each copy's lines given words of their own. Peak "
        "memory is the largest sum of the resident sets of the main process and both workers "
        "(sampled every 0.2 s). The reference is not run at this size: it holds the corpus and "
        "every instance in memory. Load average before each run: %s. Command: "
        "`python benchmarks/run_all.py create_pretraining_data_scale` (`SCALE_MB=` sets the "
        "larger size).\n" % "; ".join(loads)
    )
    print(table(["text (MB)", "seconds", "MB/s", "MB/s vs smaller", "CPU seconds",
                 "peak RSS, all processes (MB)", "peak vs smaller", "records written (MB)"],
                rows))


if __name__ == "__main__":
    main()
