"""Bad input, every script: exit 2, one line naming the flag or file, no traceback, no output.

One table; each row runs a script as a user would (a subprocess) on one kind of bad input,
with TensorFlow's import made to fail unless finding the fault needs TensorFlow.
"""

import gzip
import json
import os
import random
import subprocess
import sys

import pytest

from helpers import gzip_cut_unseen, tiny_bert_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["w%d" % i for i in range(60)]
SIZES = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
             max_position_embeddings=32)
CONFIG = tiny_bert_config(vocab_size=65, **SIZES)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Good and bad inputs, written once: text, vocabs, configs, records, checkpoints."""
    root = tmp_path_factory.mktemp("bad_input")
    rng = random.Random(0)
    docs = ["\n".join(" ".join(rng.choice(WORDS) for _ in range(10)) for _ in range(5))
            for _ in range(20)]
    (root / "text.txt").write_text("\n\n".join(docs) + "\n")
    (root / "empty.txt").write_text("")
    (root / "binary.txt").write_bytes(b"w1 w2\n\x00\x01\x02\x03\n")
    # A bad line in each half: the sharded mode keeps shards completed before an error.
    (root / "bad.jsonl").write_text('{"text": "w1 w2 w3."}\n{"body": "w4"}\n' * 2)
    (root / "latin1.txt").write_bytes("Blåbær\nSå\nGrønn\nPå\n".encode("latin-1"))
    (root / "vocab.txt").write_text("\n".join(SPECIALS + WORDS) + "\n")
    packed = gzip.compress(("\n\n".join(docs) + "\n").encode("utf-8"))
    (root / "cut.txt.gz").write_bytes(packed[:len(packed) // 2])  # a download cut short
    # Cut short where its last bytes could be a trailer: the damage is met when read.
    sample = os.path.join(REPO, "examples", "sample_text.txt")
    (root / "cut_unseen.txt.gz").write_bytes(gzip_cut_unseen(open(sample, "rb").read()))
    (root / "vocab_binary.txt").write_bytes(b"\x00\x00\x00\x00")
    (root / "vocab_nomask.txt").write_text("\n".join(SPECIALS[:4] + WORDS) + "\n")
    (root / "vocab_unused.txt").write_text("\n".join(SPECIALS + ["[unused0]"] + WORDS) + "\n")
    (root / "bert_config.json").write_text(CONFIG)
    (root / "small_vocab_config.json").write_text(tiny_bert_config(vocab_size=40, **SIZES))
    (root / "bad_config.json").write_text('{"vocab_size": 65,')
    (root / "a_file").write_text("not a folder")
    (root / "empty_folder").mkdir()  # given where a checkpoint's folder is expected
    word = "%d\tw%d\t_\t{}\t_\t_\t0\troot\t_\t_"
    tagged = "\n".join(word.format("X") % (i, i) for i in range(1, 6)) + "\n\n"
    (root / "train.conllu").write_text(tagged * 3)
    (root / "unseen.conllu").write_text(tagged + tagged.replace("\tX\t", "\tNOUN\t", 2))
    (root / "bad.conllu").write_text("# sent_id = 1\n1\tw1\t_\tX\t_\t_\t0\troot\t_\t_\n"
                                     "2\tw2\t_\tX\n\n")
    (root / "out").mkdir()  # where every case writes: it must stay empty
    from norbert.data.builder import DataConfig, create_pretraining_data

    create_pretraining_data(DataConfig(
        input_file=str(root / "text.txt"), output_file=str(root / "train.tfrecord"),
        vocab_file=str(root / "vocab.txt"), max_seq_length=32, max_predictions_per_seq=5,
        dupe_factor=1,
    ))
    _damaged_records(root)
    (root / "no_sidecar").mkdir()
    (root / "no_sidecar" / "train.tfrecord").write_bytes((root / "train.tfrecord").read_bytes())
    # A checkpoint whose embedding width differs from bert_config.json's hidden_size.
    tf = pytest.importorskip("tensorflow").compat.v1
    with tf.Graph().as_default():
        table = tf.get_variable("bert/embeddings/word_embeddings", [65, 8])
        step = tf.train.get_or_create_global_step()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            tf.train.Saver([table]).save(sess, str(root / "wrong" / "model.ckpt"))
            # Checkpoints cut short, as by a copy or a save killed midway.
            for name in ("cut_data", "cut_index"):
                tf.train.Saver([table]).save(sess, str(root / name / "model.ckpt"))
            tf.train.Saver([table, step]).save(sess, str(root / "damaged_run" / "model.ckpt"),
                                               global_step=3)
            # A run's folder whose checkpoint another bert_config.json made.
            tf.train.Saver([table, step]).save(sess, str(root / "other_shapes" / "model.ckpt"),
                                               global_step=5)
    _truncate(root / "cut_data" / "model.ckpt.data-00000-of-00001", 100)
    _truncate(root / "cut_index" / "model.ckpt.index", 20)
    _truncate(root / "damaged_run" / "model.ckpt-3.index", 20)
    # An output folder that another machine's training run holds.
    (root / "locked").mkdir()
    (root / "locked" / ".norbert-run.lock").write_text(json.dumps(
        {"host": "another-host", "pid": 4242, "started": "2024-01-02 03:04:05"}))
    _hf_folder_with_cut_weights(root)
    return root


def _truncate(path, size):
    data = path.read_bytes()
    assert len(data) > size
    path.write_bytes(data[:size])


def _damaged_records(root):
    """truncated.tfrecord: train.tfrecord cut midway. corrupt.tfrecord: its records repeated
    past TAIL_BYTES (so that only training meets the damage) with one byte of record 30
    flipped, early enough to be read in the first step."""
    from norbert.data import tfrecord
    from norbert.training.record_checks import TAIL_BYTES

    framed = [tfrecord.frame(r) for r in tfrecord.read_records(str(root / "train.tfrecord"))]
    data = b"".join(framed)
    (root / "truncated.tfrecord").write_bytes(data[:len(data) // 2 + 5])
    big = framed * (3 * TAIL_BYTES // len(data) + 1)
    spot = sum(len(f) for f in big[:29]) + 12 + 20  # inside record 30's data
    damaged = bytearray(b"".join(big))
    damaged[spot] ^= 0xFF
    (root / "corrupt.tfrecord").write_bytes(bytes(damaged))


def _hf_folder_with_cut_weights(root):
    """A transformers folder whose model.safetensors was cut short."""
    import numpy as np
    from safetensors.numpy import save_file

    from norbert.conversion import hf_format
    from norbert.model.bert_config import BertConfig

    config = BertConfig.from_json_file(str(root / "bert_config.json"))
    folder = root / "hf_cut"
    folder.mkdir()
    weights = {hf_format.tf_to_hf_name(p.name): np.zeros(hf_format.hf_shape(p), np.float32)
               for p in hf_format.parameter_table(config) if p.group == "bert"}
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    _truncate(folder / "model.safetensors", (folder / "model.safetensors").stat().st_size // 2)
    (folder / "config.json").write_text(json.dumps(hf_format.hf_config(config, "BertModel", 0)))
    (folder / "vocab.txt").write_text((root / "vocab.txt").read_text())


def _vocab_args(root, **kw):
    args = {"input_file": root / "text.txt", "output_file": root / "out" / "vocab.txt",
            "vocab_size": 200}
    args.update(kw)
    return args


def _data_args(root, **kw):
    args = {"input_file": root / "text.txt", "output_file": root / "out" / "train.tfrecord",
            "vocab_file": root / "vocab.txt", "max_seq_length": 32, "max_predictions_per_seq": 5}
    args.update(kw)
    return args


def _train_args(root, **kw):
    args = {"input_file": root / "train.tfrecord", "output_dir": root / "out" / "run",
            "bert_config_file": root / "bert_config.json", "do_train": "true",
            "max_seq_length": 32, "max_predictions_per_seq": 5, "num_train_steps": 2,
            "train_batch_size": 2}
    args.update(kw)
    return args


def _export_args(root, **kw):
    args = {"checkpoint": root / "nothing" / "model.ckpt-5",
            "bert_config_file": root / "bert_config.json", "vocab_file": root / "vocab.txt",
            "do_lower_case": "true", "output_dir": root / "out" / "hf"}
    args.update(kw)
    return args


def _extend_args(root, **kw):
    args = {"input_file": root / "text.txt", "vocab_file": root / "vocab.txt",
            "bert_config_file": root / "bert_config.json",
            "init_checkpoint": root / "nothing" / "model.ckpt-5",
            "output_dir": root / "out" / "grown", "num_new_tokens": 5}
    args.update(kw)
    return args


def _import_args(root, **kw):
    args = {"hf_dir": root / "hf_cut", "output_dir": root / "out" / "new" / "imported"}
    args.update(kw)
    return args


def _downstream_args(root, **kw):
    args = {"train_file": root / "train.conllu", "eval_file": root / "train.conllu",
            "vocab_file": root / "vocab.txt", "bert_config_file": root / "bert_config.json",
            "output_dir": root / "out" / "eval", "max_seq_length": 32}
    args.update(kw)
    return args


# (id, script, args(root), text the one-line message must hold)
CASES = [
    ("vocab: no input", "build_vocab", lambda r: _vocab_args(r, input_file=r / "none*.txt"),
     "--input_file: no files match"),
    ("vocab: empty input", "build_vocab", lambda r: _vocab_args(r, input_file=r / "empty.txt"),
     "empty.txt"),
    ("vocab: binary input", "build_vocab", lambda r: _vocab_args(r, input_file=r / "binary.txt"),
     "binary.txt is binary"),
    ("vocab: not UTF-8", "build_vocab", lambda r: _vocab_args(r, input_file=r / "latin1.txt"),
     "latin1.txt is not UTF-8"),
    ("vocab: truncated .gz", "build_vocab",
     lambda r: _vocab_args(r, input_file=r / "cut.txt.gz"), "cut.txt.gz is truncated"),
    ("vocab: output folder", "build_vocab",
     lambda r: _vocab_args(r, output_file=r / "a_file" / "vocab.txt"), "a_file"),
    ("vocab: never_split word with a space", "build_vocab",
     lambda r: _vocab_args(r, never_split="<url>,a b"), "--never_split=<url>,a b: 'a b' is not"),
    ("vocab: never_split words beyond the [unusedN] slots", "build_vocab",
     lambda r: _vocab_args(r, fill_unused_of=r / "vocab_unused.txt", never_split="<a>,<b>"),
     "--never_split: 2 words are not in --fill_unused_of="),
    ("data: never_split word not in the vocab", "create_pretraining_data",
     lambda r: _data_args(r, never_split="<url>"), "--never_split: <url> not in"),
    ("data, sharded: never_split word not in the vocab", "create_pretraining_data",
     lambda r: _data_args(r, never_split="<url>", output_file=r / "out" / "shards",
                          num_output_shards=2), "--never_split: <url> not in"),
    ("data: no input", "create_pretraining_data",
     lambda r: _data_args(r, input_file=r / "none*.txt"), "--input_file: no files match"),
    ("data: empty input", "create_pretraining_data",
     lambda r: _data_args(r, input_file=r / "empty.txt"), "empty.txt holds no text"),
    ("data: binary input", "create_pretraining_data",
     lambda r: _data_args(r, input_file=r / "binary.txt"), "binary.txt is binary"),
    ("data: not UTF-8", "create_pretraining_data",
     lambda r: _data_args(r, input_file=r / "latin1.txt"), "latin1.txt is not UTF-8"),
    ("data: truncated .gz", "create_pretraining_data",
     lambda r: _data_args(r, input_file=r / "cut.txt.gz"), "cut.txt.gz is truncated"),
    ("data, sharded: truncated .gz", "create_pretraining_data",
     lambda r: _data_args(r, input_file=r / "cut.txt.gz", output_file=r / "out" / "shards",
                          num_output_shards=2),
     ("cut.txt.gz is truncated or damaged, not a whole gzip file: its last 4 bytes",
      "copy or compress it again")),
    ("data, sharded: truncated .gz, its trailer plausible", "create_pretraining_data",
     lambda r: _data_args(r, input_file=r / "cut_unseen.txt.gz", output_file=r / "out" / "shards",
                          num_output_shards=2),
     "cut_unseen.txt.gz is truncated (the gzip stream ends early): copy or compress it again"),
    ("data: JSON line without text", "create_pretraining_data",
     lambda r: _data_args(r, input_file=r / "bad.jsonl"),
     'bad.jsonl line 2 is not a JSON object with a "text" field'),
    ("data, sharded: JSON line without text", "create_pretraining_data",
     lambda r: _data_args(r, input_file=r / "bad.jsonl", output_file=r / "out" / "shards",
                          num_output_shards=2, num_workers=1),
     'bad.jsonl: the line at byte 22 is not a JSON object with a "text" field'),
    ("data: missing vocab", "create_pretraining_data",
     lambda r: _data_args(r, vocab_file=r / "no_vocab.txt"), "no_vocab.txt"),
    ("data: binary vocab", "create_pretraining_data",
     lambda r: _data_args(r, vocab_file=r / "vocab_binary.txt"), "vocab_binary.txt is binary"),
    ("data: malformed vocab", "create_pretraining_data",
     lambda r: _data_args(r, vocab_file=r / "vocab_nomask.txt"), "lacks [MASK]"),
    ("data: output folder", "create_pretraining_data",
     lambda r: _data_args(r, output_file=r / "a_file" / "x.tfrecord"), "a_file"),
    ("train: no input", "run_pretraining",
     lambda r: _train_args(r, input_file=r / "none*.tfrecord"), "--input_file: no files match"),
    ("train: optimizer setting", "run_pretraining", lambda r: _train_args(r, clip_norm=-1),
     "--clip_norm=-1 must not be negative (0: no clipping)"),
    ("train: no TPU cores", "run_pretraining",
     lambda r: _train_args(r, use_tpu="true", num_tpu_cores=0),
     "--num_tpu_cores=0 must be at least 1"),
    # Said before any TPU is looked for (TPUEstimator would say it once connected).
    ("train: TPU batch", "run_pretraining",
     lambda r: _train_args(r, use_tpu="true", train_batch_size=12),
     "--train_batch_size=12 does not divide among --num_tpu_cores=8: use a multiple of 8"),
    ("train: malformed config", "run_pretraining",
     lambda r: _train_args(r, bert_config_file=r / "bad_config.json"),
     ("--bert_config_file: bert config ", "bad_config.json is not valid JSON")),
    ("train: seq length vs data", "run_pretraining",
     lambda r: _train_args(r, max_seq_length=16), "--max_seq_length=16 does not match the data"),
    ("train: predictions vs data", "run_pretraining",
     lambda r: _train_args(r, max_predictions_per_seq=7),
     "--max_predictions_per_seq=7 does not match the data"),
    ("train: seq length vs model", "run_pretraining",
     lambda r: _train_args(r, max_seq_length=64),
     "longer than the model's max_position_embeddings=32"),
    ("train: missing init checkpoint", "run_pretraining",
     lambda r: _train_args(r, init_checkpoint=r / "nothing" / "model.ckpt"), "no checkpoint there"),
    ("train: init checkpoint shapes", "run_pretraining",
     lambda r: _train_args(r, init_checkpoint=r / "wrong" / "model.ckpt"),
     "bert/embeddings/word_embeddings has shape [65, 8] there but [65, 16]"),
    ("train: text given as records", "run_pretraining",
     lambda r: _train_args(r, input_file=r / "text.txt"),
     ("text.txt is not a TFRecord file", "did you mean to run create_pretraining_data.py")),
    ("train: resume with other shapes", "run_pretraining",
     lambda r: _train_args(r, output_dir=r / "other_shapes"),
     ("cannot resume from", "word_embeddings has shape [65, 8] there but [65, 16]")),
    ("train: records' vocab larger than the model's", "run_pretraining",
     lambda r: _train_args(r, bert_config_file=r / "small_vocab_config.json"),
     ("train.tfrecord was built with a vocab of 65 tokens", "vocab_size is 40")),
    ("train: records' ids beyond the model's vocab (no sidecar)", "run_pretraining",
     lambda r: _train_args(r, input_file=r / "no_sidecar" / "train.tfrecord",
                           bert_config_file=r / "small_vocab_config.json"),
     ("train.tfrecord holds token id", "vocab_size is 40")),
    ("train: output folder", "run_pretraining",
     lambda r: _train_args(r, output_dir=r / "a_file" / "run"), "a_file is a file"),
    ("train: truncated records", "run_pretraining",
     lambda r: _train_args(r, input_file=r / "truncated.tfrecord"),
     ("--input_file: ", "truncated.tfrecord is damaged: record ", "is cut short")),
    ("train: corrupted record, met in training", "run_pretraining",
     # Missing folders above --output_dir: made for the run, removed again when it fails.
     lambda r: _train_args(r, input_file=r / "corrupt.tfrecord",
                           output_dir=r / "out" / "new" / "deeper" / "run"),
     "corrupt.tfrecord is damaged: record 30 (at byte"),
    ("train: corrupted record, met in evaluation", "run_pretraining",
     # Trains (and keeps its checkpoint: not in out/), then evaluates on the damaged file.
     lambda r: _train_args(r, do_eval="true", max_eval_steps=3, eval_batch_size=16,
                           eval_input_file=r / "corrupt.tfrecord", output_dir=r / "eval_run"),
     ("corrupt.tfrecord is damaged: record 30 (at byte", "evaluate again")),
    ("train: eval-only with nothing to evaluate", "run_pretraining",
     lambda r: _train_args(r, do_train="false", do_eval="true",
                           output_dir=r / "out" / "new" / "run"),
     "--do_eval: no checkpoint to evaluate"),
    ("train: output folder locked", "run_pretraining",
     lambda r: _train_args(r, output_dir=r / "locked"),
     "is in use by another training run (pid 4242 on host another-host"),
    ("train: every checkpoint damaged", "run_pretraining",
     lambda r: _train_args(r, output_dir=r / "damaged_run"),
     "every checkpoint there is damaged"),
    ("train: bad input, missing folders", "run_pretraining",
     lambda r: _train_args(r, bert_config_file=r / "bad_config.json",
                           output_dir=r / "out" / "new" / "run"),
     ("--bert_config_file: bert config ", "bad_config.json is not valid JSON")),
    ("export: missing checkpoint", "convert_to_pytorch", lambda r: _export_args(r),
     "model.ckpt-5"),
    ("export: empty folder", "convert_to_pytorch",
     lambda r: _export_args(r, checkpoint=r / "empty_folder"),
     ("--checkpoint=", "empty_folder: the folder holds no checkpoint (looked for "
      "model.ckpt-N.index with its .data-* files, or a 'checkpoint' state file",
      "pass the folder that holds them, or a prefix such as model.ckpt-1000")),
    ("export: malformed config", "convert_to_pytorch",
     lambda r: _export_args(r, bert_config_file=r / "bad_config.json"),
     ("--bert_config_file: bert config ", "bad_config.json is not valid JSON")),
    ("export: checkpoint data cut short", "convert_to_pytorch",
     lambda r: _export_args(r, checkpoint=r / "cut_data" / "model.ckpt",
                            output_dir=r / "out" / "new" / "hf"),
     "model.ckpt.data-00000-of-00001 is truncated"),
    ("export: checkpoint index cut short", "convert_to_pytorch",
     lambda r: _export_args(r, checkpoint=r / "cut_index" / "model.ckpt",
                            output_dir=r / "out" / "new" / "hf"),
     "model.ckpt.index is unreadable"),
    ("export: never_split word not in the vocab", "convert_to_pytorch",
     lambda r: _export_args(r, never_split="<url>"), "--never_split: <url> not in"),
    ("export: output folder", "convert_to_pytorch",
     lambda r: _export_args(r, output_dir=r / "a_file" / "hf"), "a_file is a file"),
    ("extend: missing checkpoint", "extend_vocab", lambda r: _extend_args(r),
     ("--init_checkpoint=", "model.ckpt-5: no checkpoint there")),
    ("extend: vocab of another size", "extend_vocab",
     lambda r: _extend_args(r, bert_config_file=r / "small_vocab_config.json"),
     "has 65 tokens but the model's table 40 rows"),
    ("extend: output folder", "extend_vocab",
     lambda r: _extend_args(r, output_dir=r / "a_file" / "grown"), "a_file is a file"),
    ("vocab_report: empty vocab", "vocab_report",
     lambda r: {"vocab_file": r / "empty.txt", "input_file": r / "text.txt"},
     ("--vocab_file: vocab file", "empty.txt is empty")),
    ("vocab_report: no input", "vocab_report",
     lambda r: {"vocab_file": r / "vocab.txt", "input_file": r / "none*.txt"},
     "--input_file: no files match"),
    ("vocab_report: growth sizes", "vocab_report",
     lambda r: {"vocab_file": r / "vocab.txt", "input_file": r / "text.txt",
                "num_new_tokens": "1000,many"}, "--num_new_tokens=1000,many: 'many' is not"),
    ("import: missing folder", "import_hf",
     lambda r: {"hf_dir": r / "no_hf", "output_dir": r / "out" / "imported"}, "no_hf"),
    ("import: weights cut short", "import_hf", lambda r: _import_args(r),
     "model.safetensors is not a valid safetensors file"),
    ("import: output folder", "import_hf",
     lambda r: _import_args(r, output_dir=r / "a_file" / "imported"), "a_file is a file"),
    ("downstream: malformed CoNLL-U line", "evaluate_downstream",
     lambda r: _downstream_args(r, eval_file=r / "bad.conllu"),
     "bad.conllu:3: 4 fields where 10 are expected"),
    ("downstream: eval label never seen in training", "evaluate_downstream",
     lambda r: _downstream_args(r, eval_file=r / "unseen.conllu"),
     "the label 'NOUN' (2 times) never occurs in --train_file"),
    ("downstream: empty file", "evaluate_downstream",
     lambda r: _downstream_args(r, train_file=r / "empty.txt"),
     ("--train_file=", "empty.txt holds no sentence")),
]


# The cases that need TensorFlow to find the fault: a checkpoint's contents read, records met
# in training, the output folder's lock (taken once the plan has built the input pipeline).
# Every other case runs with TensorFlow's import made to fail: its answer comes before
# TensorFlow loads (a second, not the several that importing TensorFlow takes).
NEEDS_TENSORFLOW = {
    "train: init checkpoint shapes", "train: resume with other shapes",
    "train: every checkpoint damaged", "train: corrupted record, met in training",
    "train: corrupted record, met in evaluation", "train: output folder locked",
    "export: checkpoint data cut short", "export: checkpoint index cut short",
}
# `python -c` with these lines, then the script and its flags.
WITHOUT_TENSORFLOW = "\n".join([
    "import runpy, sys",
    "sys.modules['tensorflow'] = None  # import tensorflow raises ImportError",
    "sys.argv = sys.argv[1:]",
    "runpy.run_path(sys.argv[0], run_name='__main__')",
])
assert NEEDS_TENSORFLOW <= {c[0] for c in CASES}

# Slow for suite time (each has a default-suite sibling): a damaged record met in evaluation
# (its sibling meets it in training).
SLOW = {"train: corrupted record, met in evaluation"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c[0] in SLOW
                                  else c for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(files, case):
    _, script, make_args, message = case
    fragments = message if isinstance(message, tuple) else (message,)
    args = make_args(files)
    command = [sys.executable, os.path.join(REPO, "scripts", script + ".py")]
    if case[0] not in NEEDS_TENSORFLOW:
        command[1:1] = ["-c", WITHOUT_TENSORFLOW]
    command += ["--%s=%s" % (k, v) for k, v in args.items()]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and all(m in errors[0] for m in fragments), done.stderr[-2000:]
    assert os.listdir(str(files / "out")) == []  # nothing written, not even a temporary
