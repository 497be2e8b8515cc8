"""The demos' shared steps: running a tool as a user would, folders, results, tables.

``examples/demo.py`` (continuing a published BERT) and ``examples/demo_scratch.py`` (a BERT
from scratch) both use them; they are not part of the norbert package.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SCRIPTS = os.path.join(REPO, "scripts")
MARKER = ".norbert-demo"  # marks a folder a demo made, so that a rerun may replace it


def say(text):
    print(text, flush=True)


def step(title):
    say("\n== %s" % title)


def tool(name, **flags):
    """Runs scripts/<name>.py with ``--key=value`` flags, echoing the command; its seconds."""
    cmd = [sys.executable, os.path.join(SCRIPTS, name)]
    for key, value in flags.items():
        if value is True:
            cmd.append("--%s" % key)
        else:
            cmd.append("--%s=%s" % (key, value))
    shown = ["python", os.path.relpath(cmd[1])] + cmd[2:]
    say("$ " + " ".join(shlex.quote(part) for part in shown))
    start = time.perf_counter()
    # The tools' logs go to stderr; both streams pass straight through, so progress shows live.
    done = subprocess.run(cmd, cwd=os.getcwd())
    if done.returncode:
        raise SystemExit("demo: %s failed (exit %d); see its message above" % (name,
                                                                               done.returncode))
    return time.perf_counter() - start


def fresh_output_dir(path):
    if os.path.exists(path):
        if not os.path.exists(os.path.join(path, MARKER)):
            raise SystemExit("demo: --output_dir=%s exists and was not made by the demo; "
                             "give another folder or remove it" % path)
        shutil.rmtree(path)
    os.makedirs(path)
    with open(os.path.join(path, MARKER), "w") as f:
        f.write("made by a norbert demo (examples/); a rerun replaces this folder\n")


def split_documents(corpus, train_path, heldout_path, every):
    """Writes every ``every``-th document to ``heldout_path`` and the rest to ``train_path``."""
    with open(corpus, encoding="utf-8") as f:
        documents = [d.strip("\n") for d in f.read().split("\n\n") if d.strip()]
    held = [d for i, d in enumerate(documents) if i % every == every - 1]
    train = [d for i, d in enumerate(documents) if i % every != every - 1]
    for path, docs in ((train_path, train), (heldout_path, held)):
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n\n".join(docs) + "\n")
    return len(train), len(held)


def hold_out(corpus, out, title):
    """The demos' first step: every eighth document of ``corpus`` into out/heldout.txt, the rest
    into out/train.txt."""
    step(title)
    n_train, n_held = split_documents(corpus, os.path.join(out, "train.txt"),
                                      os.path.join(out, "heldout.txt"), 8)
    say("%d training documents, %d held out" % (n_train, n_held))


def count_records(path):
    """The records in a file, from the sidecar the data builder writes beside it."""
    with open(path + ".meta.json", encoding="utf-8") as f:
        return json.load(f)["instances_in_file"]


def read_eval_results(path):
    results = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(" = ")
            results[key.strip()] = float(value)
    return results


def fill_masks(hf_dir, sentences):
    """[(sentence, [(word, probability)] * 3)] from the exported model; None without
    transformers."""
    try:
        import transformers
    except ImportError:
        return None
    transformers.logging.set_verbosity_error()  # the load report lists the unused NSP head
    transformers.logging.disable_progress_bar()
    fill = transformers.pipeline("fill-mask", model=hf_dir, top_k=3)
    return [(s, [(guess["token_str"], guess["score"]) for guess in fill(s)]) for s in sentences]


def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def export_step(hf_dir, summary, **flags):
    """convert_to_pytorch.py into ``hf_dir``; a summary row with the files it wrote."""
    seconds = tool("convert_to_pytorch.py", output_dir=hf_dir, **flags)
    summary.append(("export", "%.0f" % seconds, "%s: %s" % (hf_dir, ", ".join(
        sorted(os.listdir(hf_dir))))))


def fill_step(hf_dir, sentences, summary):
    """Prints the exported model's top guesses for each sentence's [MASK]; a summary row."""
    start = time.perf_counter()
    filled = fill_masks(hf_dir, sentences)
    if filled is None:
        say("transformers and torch are not installed here: skipped "
            "(pip install torch transformers to see it)")
        summary.append(("fill [MASK]", "-", "skipped: transformers not installed"))
        return
    for sentence, top in filled:
        say("%s\n    %s" % (sentence, "   ".join("%s %.2f" % pair for pair in top)))
    summary.append(("fill [MASK]", "%.0f" % (time.perf_counter() - start),
                    "%d sentences, top guess: %s" % (len(filled), ", ".join(
                        top[0][0] for _, top in filled))))


def finish(summary, begin, out, hf_dir):
    """The summary table, and where everything is."""
    step("summary (%.0f s in all)" % (time.perf_counter() - begin))
    say(table(["step", "seconds", "result"], summary))
    say("\nEverything is in %s/. Load the model with "
        "transformers.AutoModelForMaskedLM.from_pretrained(%r)." % (out, hf_dir))
