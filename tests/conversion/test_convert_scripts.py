"""scripts/convert_to_pytorch.py and scripts/import_hf.py end to end in subprocesses: a round
trip through both, and bad input as one line on stderr, exit status 2, nothing written."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from norbert.conversion import hf_format
from norbert.model.bert_config import BertConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPORT = os.path.join(REPO, "scripts", "convert_to_pytorch.py")
IMPORT = os.path.join(REPO, "scripts", "import_hf.py")
CONFIG = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=16, max_position_embeddings=16, type_vocab_size=2)


def run(script, *flags):
    # TensorFlow's own C++ start-up lines are not norbert's to silence; keep stderr ours.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, script] + list(flags), cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    # Newer TensorFlow prints C++ start-up lines whatever TF_CPP_MIN_LOG_LEVEL says: ours is
    # the one line that starts with "error: ".
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def checkpoint(tmp_path, make_vocab):
    """A tiny checkpoint with Google's names (encoder, pooler, both heads) and its files."""
    pytest.importorskip("tensorflow")
    from norbert.model.checkpoints import save_checkpoint

    rng = np.random.RandomState(0)
    values = {p.name: rng.randn(*p.shape).astype(np.float32)
              for p in hf_format.parameter_table(CONFIG)}
    values["bert/pooler/dense/kernel/adam_m"] = np.zeros([8, 8], np.float32)
    save_checkpoint(values, str(tmp_path / "train" / "model.ckpt-5"))
    CONFIG.to_json_file(str(tmp_path / "bert_config.json"))
    vocab = make_vocab(["the", "a", "##s", "dog", "cat"] + ["w%d" % i for i in range(10)])
    return tmp_path, values, vocab


def test_export_then_import_round_trip(checkpoint):
    tf = pytest.importorskip("tensorflow").compat.v1
    tmp_path, values, vocab = checkpoint
    hf = str(tmp_path / "hf")
    done = run(EXPORT, "--checkpoint=%s" % (tmp_path / "train"),
               "--bert_config_file=%s" % (tmp_path / "bert_config.json"),
               "--vocab_file=%s" % vocab, "--do_lower_case=false", "--output_dir=%s" % hf)
    assert done.returncode == 0, done.stderr
    assert "BertForPreTraining" in done.stdout
    assert "left out, optimizer state and step (1): bert/pooler/dense/kernel/adam_m" in done.stdout
    assert sorted(os.listdir(hf)) == ["config.json", "model.safetensors",
                                      "special_tokens_map.json", "tokenizer_config.json",
                                      "vocab.txt"]
    assert json.loads(open(os.path.join(hf, "tokenizer_config.json")).read())[
        "do_lower_case"] is False

    back = str(tmp_path / "back")
    done = run(IMPORT, "--hf_dir=%s" % hf, "--output_dir=%s" % back)
    assert done.returncode == 0, done.stderr
    assert BertConfig.from_json_file(os.path.join(back, "bert_config.json")) == CONFIG
    reader = tf.train.load_checkpoint(os.path.join(back, "bert_model.ckpt"))
    assert sorted(reader.get_variable_to_shape_map()) == sorted(
        n for n in values if not n.endswith("adam_m"))
    for name in reader.get_variable_to_shape_map():
        np.testing.assert_array_equal(reader.get_tensor(name), values[name])


def test_export_with_a_config_that_does_not_fit(checkpoint):
    tmp_path, _, vocab = checkpoint
    CONFIG.replace(intermediate_size=12).to_json_file(str(tmp_path / "other.json"))
    done = run(EXPORT, "--checkpoint=%s" % (tmp_path / "train"),
               "--bert_config_file=%s" % (tmp_path / "other.json"),
               "--vocab_file=%s" % vocab, "--do_lower_case=true",
               "--output_dir=%s" % (tmp_path / "hf"))
    assert_one_line_error(done, "model.ckpt-5", "layer_0/intermediate/dense/kernel",
                          "--bert_config_file")
    assert not os.path.exists(str(tmp_path / "hf"))


def test_export_without_a_checkpoint(tmp_path, make_vocab):
    CONFIG.to_json_file(str(tmp_path / "bert_config.json"))
    done = run(EXPORT, "--checkpoint=%s" % (tmp_path / "nothing"),
               "--bert_config_file=%s" % (tmp_path / "bert_config.json"),
               "--vocab_file=%s" % make_vocab(["x"]), "--do_lower_case=true",
               "--output_dir=%s" % (tmp_path / "hf"))
    assert_one_line_error(done, "--checkpoint=", "no checkpoint there")
    assert not os.path.exists(str(tmp_path / "hf"))


@pytest.fixture
def hf_folder(tmp_path, make_vocab):
    """A transformers-layout folder written without torch: config.json, weights, vocab."""
    from safetensors.numpy import save_file

    folder = tmp_path / "hf"
    folder.mkdir()
    rng = np.random.RandomState(0)
    weights = {hf_format.tf_to_hf_name(p.name): rng.randn(*hf_format.hf_shape(p)).astype(
        np.float32) for p in hf_format.parameter_table(CONFIG) if p.group in ("bert", "pooler")}
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    values = hf_format.hf_config(CONFIG, "BertModel", 0)
    (folder / "config.json").write_text(json.dumps(values))
    with open(make_vocab(["w%d" % i for i in range(15)]), "rb") as f:
        (folder / "vocab.txt").write_bytes(f.read())
    return folder, values


@pytest.mark.parametrize("change, fragments", [
    ({"model_type": "gpt2"}, ["config.json", "model_type is 'gpt2', not 'bert'"]),
    ({"hidden_size": 12, "num_attention_heads": 2},
     ["model.safetensors", "word_embeddings has shape [20, 8] but the config needs [20, 12]"]),
])
def test_import_of_what_is_not_this_bert(hf_folder, tmp_path, change, fragments):
    folder, values = hf_folder
    (folder / "config.json").write_text(json.dumps(dict(values, **change)))
    done = run(IMPORT, "--hf_dir=%s" % folder, "--output_dir=%s" % (tmp_path / "out"))
    assert_one_line_error(done, *fragments)
    assert not os.path.exists(str(tmp_path / "out"))
    assert sorted(os.listdir(str(tmp_path))) == ["hf", "vocab.txt"]  # no staging left behind


def test_import_without_vocab(hf_folder, tmp_path):
    folder, _ = hf_folder
    os.remove(str(folder / "vocab.txt"))
    done = run(IMPORT, "--hf_dir=%s" % folder, "--output_dir=%s" % (tmp_path / "out"))
    assert_one_line_error(done, "has no vocab.txt", str(folder))
    assert not os.path.exists(str(tmp_path / "out"))


@pytest.mark.slow  # suite time: tests/test_writes.py makes missing output folders for every script
def test_missing_output_folders_are_made(checkpoint):
    tmp_path, _, vocab = checkpoint
    hf = tmp_path / "exports" / "new" / "hf"
    done = run(EXPORT, "--checkpoint=%s" % (tmp_path / "train"),
               "--bert_config_file=%s" % (tmp_path / "bert_config.json"),
               "--vocab_file=%s" % vocab, "--do_lower_case=true", "--output_dir=%s" % hf)
    assert done.returncode == 0, done.stderr
    assert "config.json" in os.listdir(str(hf))
    back = tmp_path / "imports" / "new" / "google"
    done = run(IMPORT, "--hf_dir=%s" % hf, "--output_dir=%s" % back)
    assert done.returncode == 0, done.stderr
    assert "bert_config.json" in os.listdir(str(back))
    # No staging folders left beside the outputs.
    assert os.listdir(str(tmp_path / "exports" / "new")) == ["hf"]
    assert os.listdir(str(tmp_path / "imports" / "new")) == ["google"]


def test_a_damaged_checkpoint_is_named_before_anything_is_written(checkpoint):
    tmp_path, _, vocab = checkpoint
    data = tmp_path / "train" / "model.ckpt-5.data-00000-of-00001"
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # flipped bytes: only reading the tensors shows them
    data.write_bytes(bytes(blob))
    done = run(EXPORT, "--checkpoint=%s" % (tmp_path / "train"),
               "--bert_config_file=%s" % (tmp_path / "bert_config.json"),
               "--vocab_file=%s" % vocab, "--do_lower_case=true",
               "--output_dir=%s" % (tmp_path / "new" / "hf"))
    assert_one_line_error(done, "checkpoint %s is damaged" % (tmp_path / "train" / "model.ckpt-5"),
                          "Checksum does not match")
    assert not os.path.exists(str(tmp_path / "new"))


@pytest.mark.parametrize("step", ["export", "import"])
def test_a_failed_write_leaves_no_folder_it_made(checkpoint, hf_folder, monkeypatch, step):
    """A failure after the output folders were made (a full disk, say) removes them again."""
    from norbert.conversion import export, importing

    tmp_path, _, vocab = checkpoint
    target = tmp_path / "new" / "deeper" / "out"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if step == "export":
        import safetensors.numpy

        monkeypatch.setattr(safetensors.numpy, "save_file", full_disk)
        call = lambda: export.export_to_hf(  # noqa: E731
            checkpoint=str(tmp_path / "train"), bert_config_file=str(tmp_path / "bert_config.json"),
            vocab_file=vocab, do_lower_case=True, output_dir=str(target))
    else:
        from norbert.model import checkpoints

        monkeypatch.setattr(checkpoints, "save_checkpoint", full_disk)
        call = lambda: importing.import_from_hf(hf_dir=str(hf_folder[0]),  # noqa: E731
                                                output_dir=str(target))
    with pytest.raises(OSError, match="No space left"):
        call()
    assert not os.path.exists(str(tmp_path / "new"))
    assert not [n for n in os.listdir(str(tmp_path)) if n.startswith(".norbert-convert-")]
