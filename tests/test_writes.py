"""Nothing in norbert writes outside the paths the user gave it.

The whole path runs as scripts with the working directory, HOME and TMPDIR each an empty
folder of their own; afterwards those are still empty, the inputs are untouched, and each
output folder holds only what the step is meant to write.
"""

import os
import random
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CONFIG = (
    '{"vocab_size": %d, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,'
    ' "intermediate_size": 32, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,'
    ' "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 32, "type_vocab_size": 2,'
    ' "initializer_range": 0.02}'
)


def _snapshot(folder):
    """Every file under ``folder`` with its size and modification time."""
    found = {}
    for root, _, names in os.walk(str(folder)):
        for name in names:
            path = os.path.join(root, name)
            stat = os.stat(path)
            found[os.path.relpath(path, str(folder))] = (stat.st_size, stat.st_mtime_ns)
    return found


def test_scripts_write_only_where_told(tmp_path):
    pytest.importorskip("tensorflow")
    sandbox = {name: tmp_path / name for name in ("cwd", "home", "tmp", "inputs", "out")}
    for folder in sandbox.values():
        folder.mkdir()
    inputs = sandbox["inputs"]
    rng = random.Random(0)
    words = ["ord%d" % i for i in range(80)]
    docs = ["\n".join(" ".join(rng.choice(words) for _ in range(10)) for _ in range(5))
            for _ in range(30)]
    (inputs / "corpus.txt").write_text("\n\n".join(docs) + "\n")
    before = _snapshot(inputs)
    out = sandbox["out"]
    env = dict(os.environ, HOME=str(sandbox["home"]), TMPDIR=str(sandbox["tmp"]),
               PYTHONDONTWRITEBYTECODE="1", TF_CPP_MIN_LOG_LEVEL="2")

    def run(script, **flags):
        command = [sys.executable, os.path.join(REPO, "scripts", script + ".py")]
        command += ["--%s=%s" % (k, v) for k, v in flags.items()]
        done = subprocess.run(command, cwd=str(sandbox["cwd"]), env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr[-3000:]

    (out / "vocab").mkdir()
    run("build_vocab", input_file=inputs / "corpus.txt", output_file=out / "vocab" / "vocab.txt",
        vocab_size=300, num_unused=0)
    assert set(_snapshot(out / "vocab")) == {"vocab.txt"}
    vocab_size = len((out / "vocab" / "vocab.txt").read_text().splitlines())
    (inputs / "bert_config.json").write_text(CONFIG % vocab_size)
    before = _snapshot(inputs)

    (out / "data").mkdir()
    run("create_pretraining_data", input_file=inputs / "corpus.txt",
        output_file=out / "data" / "train.tfrecord", vocab_file=out / "vocab" / "vocab.txt",
        max_seq_length=32, max_predictions_per_seq=5, dupe_factor=1)
    assert set(_snapshot(out / "data")) == {"train.tfrecord", "train.tfrecord.meta.json"}

    run("run_pretraining", input_file=out / "data" / "train.tfrecord", output_dir=out / "run",
        bert_config_file=inputs / "bert_config.json", do_train="true", do_eval="true",
        max_seq_length=32, max_predictions_per_seq=5, train_batch_size=4, eval_batch_size=4,
        num_train_steps=3, num_warmup_steps=0, max_eval_steps=2)
    written = set(_snapshot(out / "run"))
    assert "eval_results.txt" in written and "checkpoint" in written
    assert all(n == "eval_results.txt" or n == "checkpoint" or n.startswith("model.ckpt-3")
               or n.startswith("events.out.tfevents") or n == "graph.pbtxt"
               or n == "training_objective.json"
               or n == "data_position/worker-0/checkpoint"
               or n.startswith("data_position/worker-0/position-3.") for n in written), written

    run("convert_to_pytorch", checkpoint=out / "run", bert_config_file=inputs / "bert_config.json",
        vocab_file=out / "vocab" / "vocab.txt", do_lower_case="true", output_dir=out / "hf")
    assert set(_snapshot(out / "hf")) >= {"config.json", "model.safetensors", "vocab.txt",
                                          "README.md"}  # the card: the run noted its objective

    run("import_hf", hf_dir=out / "hf", output_dir=out / "imported")
    assert {"bert_config.json", "vocab.txt"} <= set(_snapshot(out / "imported"))

    for name in ("cwd", "home", "tmp"):
        assert _snapshot(sandbox[name]) == {}, (name, _snapshot(sandbox[name]))
    assert _snapshot(inputs) == before
    assert sorted(os.listdir(str(out))) == ["data", "hf", "imported", "run", "vocab"]
