"""The demos as a user runs them: their wall time and what they reach.

``make demo`` (``examples/demo.py``: all-MiniLM-L6-v2 imported, its vocab grown by Norwegian
pieces, continued on the sample text) and ``make demo-scratch`` (``examples/demo_scratch.py``:
a small BERT from scratch on the same text), each a whole process with its defaults, the
environment in place. Reported: wall time and the summary rows each demo prints (records,
held-out masked-LM accuracy and loss before and after, the exported model's top guesses).

``python benchmarks/run_all.py demos`` (about 10 minutes on 2 cores).
"""

import os
import subprocess
import sys
import tempfile
import time

from common import QUICK, REPO, table

DEMOS = (("make demo", "demo.py", ()), ("make demo-scratch", "demo_scratch.py", ()))
QUICK_FLAGS = {"demo.py": ("--num_train_steps=3", "--num_new_tokens=40", "--dupe_factor=1"),
               "demo_scratch.py": ("--num_train_steps=4", "--vocab_size=800",
                                   "--dupe_factor=1")}


def summary_rows(printed):
    """The (step, result) rows of the summary table a demo prints last (its columns are
    space-aligned: the dashes under the header give their starts)."""
    lines = printed[printed.index("== summary"):].splitlines()
    dashes = lines[2]
    starts = [i for i, c in enumerate(dashes) if c == "-" and (i == 0 or dashes[i - 1] == " ")]
    rows = []
    for line in lines[3:]:
        if not line.strip():
            break
        rows.append((line[:starts[1]].strip(), line[starts[2]:].strip()))
    return rows


def guesses(printed):
    """(sentence, its top three guesses) as the demo printed them before its summary."""
    lines = printed[:printed.index("== summary")].splitlines()
    return [(lines[i].strip(), " ".join(lines[i + 1].split())) for i in range(len(lines) - 1)
            if "[MASK]" in lines[i] and lines[i + 1].startswith("    ")]


def run_demo(script, flags, work):
    out = os.path.join(work, script[:-3] + "_output")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, os.path.join(REPO, "examples", script),
                           "--output_dir=%s" % out] + list(flags), cwd=work,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit("%s failed:\n%s" % (script, done.stdout[-3000:]))
    printed = done.stdout.replace(work + os.sep, "")
    return seconds, summary_rows(printed) + [("`%s`" % s, g) for s, g in guesses(printed)]


def main():
    work = tempfile.mkdtemp(prefix="norbert-demos-")
    rows = []
    for target, script, flags in DEMOS:
        seconds, summary = run_demo(script, QUICK_FLAGS[script] if QUICK else flags, work)
        minutes = "%d min %02d s" % divmod(round(seconds), 60)
        for n, (step, result) in enumerate(summary):
            rows.append((target if n == 0 else "", minutes if n == 0 else "", step,
                         result.replace("|", "/")))
    print("## The demos\n")
    print("Each demo as `make` runs it, with its defaults, on `examples/sample_text.txt` (66 kB "
          "of Norwegian and English): the whole process's wall time with the environment in "
          "place, and the summary it prints. `make demo` continues all-MiniLM-L6-v2, which "
          "ships without its masked-LM head: the head starts fresh, so the accuracy before is "
          "near zero and the figures show the path, not what a real corpus gives. The last rows of "
          "each demo are the exported model's three likeliest words (and probabilities) for "
          "each masked sentence. Command: "
          "`python benchmarks/run_all.py demos`.\n")
    print(table(["demo", "wall time", "step", "result"], rows))


if __name__ == "__main__":
    main()
