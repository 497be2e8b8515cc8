"""Pretraining speed: norbert's run_pretraining vs Google's, and Hugging Face PyTorch, on CPU.

The same records (built from ../shared/data/*.txt with norbert's data builder, seq 128, 20
predictions, the uncased 30,522-token vocab), the same model config, batch and optimizer flags.
TensorFlow tools run as whole processes (``scripts/run_pretraining.py`` and the reference's
``run_pretraining.py`` through TPUEstimator with ``use_tpu=False`` and the layer-norm stand-in);
steady-state speed is the difference of two runs of different lengths, so start-up, graph
building, the first step's one-time work and the final checkpoint cancel out:
``examples/s = batch * (long - short steps) / (long - short seconds)``, each run length the
best of ``REPEATS`` runs, the tools interleaved (start-up on a 2-core VM varies by seconds).
The options (--use_xla, --precision, --optimizer=adamw_exact) are compared in-process by
benchmarks/pretraining_step.py, where a step is measured without start-up noise.
Hugging Face ``BertForPreTraining`` (eager PyTorch, AdamW) is timed in-process after warm-up
steps, when torch and transformers import.

``NORBERT_BENCH_QUICK=1`` runs the tiny config only.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import QUICK, REPO, corpus_files, table, uncased_vocab

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(REPO, "scripts", "run_pretraining.py")
SEQ, PRED, BATCH = 128, 20, 8
CONFIGS = {
    # name: (config fields, (short, long) step counts)
    "tiny (L=2, H=128)": (dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=512), (10, 110)),
    "BERT-base (L=12, H=768)": (dict(hidden_size=768, num_hidden_layers=12,
                                     num_attention_heads=12, intermediate_size=3072), (2, 17)),
}
REPEATS = 2  # runs of each length per tool; the fastest is kept
COMMON_FLAGS = ["--max_seq_length=%d" % SEQ, "--max_predictions_per_seq=%d" % PRED,
                "--train_batch_size=%d" % BATCH, "--learning_rate=1e-4", "--num_warmup_steps=1",
                "--save_checkpoints_steps=100000", "--do_train=True"]
REFERENCE_CODE = (
    "import sys; sys.path.insert(0, %r); import reference_shim; reference_shim.install(); "
    "from absl import app; from bert import run_pretraining as r; app.run(r.main)"
    % os.path.join(REPO, "tests")
)


def bert_config(fields):
    config = {"vocab_size": 30522, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
              "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512,
              "type_vocab_size": 2, "initializer_range": 0.02}
    config.update(fields)
    return config


def run_process(cmd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit("%s failed:\n%s" % (" ".join(cmd[:3]), done.stdout[-3000:]))
    return seconds


def fastest_runs(commands, steps, work):
    """{(label, steps): the fastest whole-process seconds of ``REPEATS`` runs} of each command.

    ``commands`` maps a label to ``cmd_for_steps(n, output_dir)``. The runs are interleaved
    (each repeat runs every command once at each length), so a slow spell of the machine falls
    on all of them.
    """
    best = {}
    for _ in range(REPEATS):
        for label, cmd_for_steps in commands.items():
            for n in steps:
                print("    %s, %d steps" % (label, n), file=sys.stderr, flush=True)
                out = os.path.join(work, "out")
                shutil.rmtree(out, ignore_errors=True)
                seconds = run_process(cmd_for_steps(n, out))
                best[label, n] = min(best.get((label, n), seconds), seconds)
    return best


def steady_rates(best, labels, steps):
    """Steady-state examples/s of each label from its fastest short and long runs."""
    short, long_ = steps
    rates = {}
    for label in labels:
        extra = best[label, long_] - best[label, short]
        # Under load the extra steps can cost less than the runs' variance: no figure then.
        rates[label] = BATCH * (long_ - short) / extra if extra > 0 else float("nan")
    return rates


def tf_examples_per_second(commands, steps, work):
    """Steady-state examples/s of each command, from its fastest short and long runs."""
    return steady_rates(fastest_runs(commands, steps, work), commands, steps)


def hf_examples_per_second(config_path, records, steps):
    """HF BertForPreTraining, eager PyTorch on the CPU: a subprocess, timed inside."""
    code = os.path.join(HERE, "pretraining.py")
    out = subprocess.run([sys.executable, code, "--hf", config_path, records, str(steps)],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    if out.returncode:
        raise SystemExit("HF run failed:\n" + out.stderr[-3000:])
    return float(out.stdout.strip().splitlines()[-1])


def hf_worker(config_path, records, steps):
    """Runs in the child: prints examples/s of ``steps`` AdamW steps after 2 warm-up steps."""
    import numpy as np
    import torch
    import transformers

    from norbert.data import tfrecord

    with open(config_path) as f:
        fields = json.load(f)
    config = transformers.BertConfig(
        vocab_size=fields["vocab_size"], hidden_size=fields["hidden_size"],
        num_hidden_layers=fields["num_hidden_layers"],
        num_attention_heads=fields["num_attention_heads"],
        intermediate_size=fields["intermediate_size"], hidden_act="gelu_new",
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        max_position_embeddings=fields["max_position_embeddings"],
        type_vocab_size=fields["type_vocab_size"], initializer_range=0.02,
        layer_norm_eps=1e-12,
    )
    torch.manual_seed(0)
    model = transformers.BertForPreTraining(config)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, eps=1e-6)
    examples = []
    for record in tfrecord.read_records(records):
        examples.append(tfrecord.decode_example(record))
        if len(examples) == BATCH * (steps + 2):
            break

    def batch(i):
        rows = examples[i * BATCH:(i + 1) * BATCH]
        ids = torch.tensor([r["input_ids"] for r in rows])
        labels = torch.full_like(ids, -100)
        for b, r in enumerate(rows):
            for pos, tok, w in zip(r["masked_lm_positions"], r["masked_lm_ids"],
                                   r["masked_lm_weights"]):
                if w > 0:
                    labels[b, pos] = tok
        return dict(
            input_ids=ids, attention_mask=torch.tensor([r["input_mask"] for r in rows]),
            token_type_ids=torch.tensor([r["segment_ids"] for r in rows]), labels=labels,
            next_sentence_label=torch.tensor([r["next_sentence_labels"][0] for r in rows]),
        )

    batches = [batch(i) for i in range(steps + 2)]

    def step(b):
        loss = model(**b).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    for b in batches[:2]:
        step(b)
    start = time.perf_counter()
    losses = [step(b) for b in batches[2:]]
    seconds = time.perf_counter() - start
    assert np.all(np.isfinite(losses))
    print(BATCH * steps / seconds)


def main():
    from norbert.data.builder import DataConfig, create_pretraining_data

    try:
        import torch  # noqa: F401
        import transformers

        hf_version = "transformers %s, torch %s" % (transformers.__version__, torch.__version__)
    except ImportError:
        hf_version = None
    work = tempfile.mkdtemp(prefix="bench_pretraining_")
    rows = []
    try:
        records = os.path.join(work, "train.tfrecord")
        create_pretraining_data(DataConfig(
            input_file=",".join(corpus_files()), output_file=records,
            vocab_file=uncased_vocab(), max_seq_length=SEQ, max_predictions_per_seq=PRED,
            dupe_factor=1,
        ))
        for name, (fields, steps) in CONFIGS.items():
            if QUICK and not name.startswith("tiny"):
                continue
            config_path = os.path.join(work, "bert_config.json")
            with open(config_path, "w") as f:
                json.dump(bert_config(fields), f)
            base = ["--input_file=" + records, "--bert_config_file=" + config_path] + COMMON_FLAGS

            def reference(n, out):
                return [sys.executable, "-c", REFERENCE_CODE] + base + [
                    "--output_dir=" + out, "--num_train_steps=%d" % n]

            def ours(n, out):
                return [sys.executable, SCRIPT] + base + [
                    "--output_dir=" + out, "--num_train_steps=%d" % n, "--log_every_steps=100000"]

            commands = {
                "Google's run_pretraining.py (TPUEstimator, use_tpu=False)": reference,
                "norbert run_pretraining (defaults: fp32, `--optimizer=adamw`)": ours,
            }
            print("  %s" % name, file=sys.stderr, flush=True)
            results = list(tf_examples_per_second(commands, steps, work).items())
            if hf_version:
                print("  %s: HF" % name, file=sys.stderr, flush=True)
                hf_steps = steps[1] - steps[0] + 2
                results.append(("Hugging Face BertForPreTraining, PyTorch eager fp32, AdamW",
                                hf_examples_per_second(config_path, records, hf_steps)))
            ref = results[0][1]
            for label, rate in results:
                if rate != rate:  # NaN: see tf_examples_per_second
                    rows.append((name, label, "n/a (noise)", ""))
                    continue
                rows.append((name, label, "%.2f" % rate, "%.2fx" % (rate / ref)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("## Pretraining speed\n")
    print(
        "Training steps on the CPU, masked LM + next sentence, batch %d, sequence length %d, "
        "%d predictions per sequence, AdamWeightDecay (AdamW for PyTorch), the uncased "
        "30,522-token vocab, records built from `../shared/data/*.txt`. TensorFlow runs are "
        "whole processes of each tool on the same records and flags; steady-state examples/s "
        "is batch x (extra steps) / (extra seconds) between a short and a long run (%s), each "
        "length the fastest of %d runs with the tools interleaved, so start-up and the final "
        "checkpoint cancel out. norbert's default `--optimizer=adamw` is Google's "
        "AdamWeightDecay on TensorFlow's fused Adam kernel. The options (`--use_xla`, "
        "`--precision=bf16`, `--optimizer=adamw_exact`) are compared step by step in the next "
        "section; fp16 is left out: TensorFlow's CPU float16 kernels are over 50x slower than "
        "float32 (it is meant for GPUs). %s Command: `python benchmarks/run_all.py "
        "pretraining`.\n"
        % (BATCH, SEQ, PRED,
           "; ".join("%s: %d and %d steps" % (n, s[0], s[1]) for n, (_, s) in CONFIGS.items()),
           REPEATS,
           ("Hugging Face (%s) is timed in-process after 2 warm-up steps, on as many steps as "
            "the TF difference." % hf_version) if hf_version else
           "Hugging Face was not measured (torch or transformers missing).")
    )
    print(table(["model", "trainer", "examples/s", "vs reference"], rows))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--hf":
        sys.path.insert(0, REPO)
        hf_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.path.insert(0, REPO)
        main()
