"""The data builder as an Apache Beam pipeline on one machine: Beam's overhead.

The same build twice, each as a whole process (``scripts/create_pretraining_data.py``), on
``BEAM_MB`` megabytes (default 100) of the shared corpus repeated (each copy's lines given words
of their own) with the same ``--num_output_shards``: the local sharded mode with two worker
processes, and Beam's DirectRunner with two worker processes (``direct_num_workers=2,
direct_running_mode=multi_processing``). The records are the same (checked here, file by file),
so the throughput ratio is what running the shards through Beam costs on one machine; on a
cluster the same pipeline spreads the shards over many.

Beam has its own environment (``make test-beam`` makes ``.venv-beam``): both builds run with its
Python, so that they differ only in the runner.
"""

import filecmp
import math
import os
import shutil
import subprocess
import sys
import tempfile

from common import REPO, corpus_files, run_measured, table, uncased_vocab, varied_copies

SCRIPT = os.path.join(REPO, "scripts", "create_pretraining_data.py")
BEAM_MB = float(os.environ.get("BEAM_MB", "100"))
FLAGS = ["--max_seq_length=128", "--max_predictions_per_seq=20", "--dupe_factor=5",
         "--random_seed=12345", "--do_lower_case=True", "--num_output_shards=16",
         "--progress=false"]


def beam_python():
    """A Python with Apache Beam: this one, or the Beam environment's."""
    probe = subprocess.run([sys.executable, "-c", "import apache_beam"], capture_output=True)
    if probe.returncode == 0:
        return sys.executable
    python = os.path.join(REPO, ".venv-beam", "bin", "python")
    if not os.path.exists(python):
        raise SystemExit("benchmarks/beam_data.py needs Apache Beam: run `make .venv-beam/"
                         ".installed` (or `make test-beam`) first")
    return python


def main():
    python = beam_python()
    work = tempfile.mkdtemp(prefix="bench_beam_")
    rows, loads = [], []
    try:
        small = corpus_files()
        small_mb = sum(os.path.getsize(p) for p in small) / 1e6
        text_dir = os.path.join(work, "text")
        os.makedirs(text_dir)
        inputs = varied_copies(small, text_dir, math.ceil(BEAM_MB / small_mb))
        real_mb = sum(os.path.getsize(p) for p in inputs) / 1e6
        common = [python, SCRIPT, "--input_file=" + os.path.join(text_dir, "*.txt"),
                  "--vocab_file=" + uncased_vocab()] + FLAGS
        runs = [("local sharded mode, `--num_workers=2`", "local", ["--num_workers=2"]),
                ("Beam DirectRunner, 2 worker processes", "beam",
                 ["--runner=DirectRunner", "--beam_pipeline_options=direct_num_workers=2,"
                  "direct_running_mode=multi_processing"])]
        base = None
        for label, folder, flags in runs:
            out = os.path.join(work, folder, "data.tfrecord")
            loads.append("%.2f %.2f %.2f" % os.getloadavg())
            seconds, peak, cpu = run_measured(common + ["--output_file=" + out] + flags)
            base = base or seconds
            rows.append((label, "%.0f" % real_mb, "%.1f" % seconds, "%.2f" % (real_mb / seconds),
                         "%.2fx" % (base / seconds), "%.0f" % cpu, "%.0f" % peak))
        local, beam = (os.path.join(work, f) for f in ("local", "beam"))
        shards = sorted(n for n in os.listdir(local) if not n.endswith(".json"))
        same = all(filecmp.cmp(os.path.join(local, n), os.path.join(beam, n), shallow=False)
                   for n in shards)
        if not same:
            raise SystemExit("the Beam build's records differ from the local sharded mode's")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("## Pretraining data on Apache Beam, one machine\n")
    print(
        "The same build (seq 128, `--dupe_factor=5`, `--num_output_shards=16`, uncased "
        "30,522-token vocab) on the shared corpus repeated, each copy's lines given words of "
        "their own, as a whole process: the local sharded mode with two workers, and Beam's "
        "DirectRunner with two worker processes. The %d shards were identical, byte for byte. "
        "Throughput vs the local mode is Beam's overhead on one machine. Peak memory is the "
        "largest sum of the resident sets of the main process and its workers (sampled every "
        "0.2 s). Load average before each run: %s. Command: `python benchmarks/run_all.py "
        "beam_data` (`BEAM_MB=` sets the size; runs in `.venv-beam`).\n"
        % (len(shards), "; ".join(loads))
    )
    print(table(["builder", "text (MB)", "seconds", "MB/s", "throughput vs local",
                 "CPU seconds", "peak RSS, all processes (MB)"], rows))


if __name__ == "__main__":
    main()
