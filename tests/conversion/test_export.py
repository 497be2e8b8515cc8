"""Export (``norbert.conversion.export``): fidelity against transformers as the oracle, and
errors.

The oracle tests load what we write with transformers 5 (torch) and compare numbers with our TF
model on real text; they skip cleanly when torch or transformers is missing.
"""

import json
import os

import numpy as np
import pytest

from helpers import scaled
from norbert import NorbertError

from norbert.conversion import hf_format
from norbert.model.bert_config import BertConfig
from small_bert import MAX_PREDICTIONS, SEQ, placeholders, small_config


# ---- export: our TF model and transformers give the same numbers ------------------------


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
        inputs = placeholders(tf, features["input_ids"].shape[0])
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
    from norbert.conversion.export import ExportConfig, export_to_hf

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
                vocab_file=uncased_vocab_path, output_dir=str(work / "hf")), do_lower_case=True)
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
    umask = os.umask(0)
    os.umask(umask)
    for name in os.listdir(run["hf"]):  # as any file the user writes: readable when shared
        assert os.stat(os.path.join(run["hf"], name)).st_mode & 0o777 == 0o666 & ~umask, name


def test_exported_tokenizer_gives_our_ids(exported, corpus_lines, uncased_vocab_path):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from norbert import FullTokenizer

    run = exported("gelu")
    theirs = transformers.AutoTokenizer.from_pretrained(run["hf"])
    ours = FullTokenizer(uncased_vocab_path, do_lower_case=True)
    lines = [l for l in corpus_lines if l.strip()][::10]
    assert len(lines) > scaled(1000)
    encoded = theirs(lines, add_special_tokens=False)["input_ids"]
    differing = [l for l, ids in zip(lines, encoded) if ids != ours.encode(l)]
    assert not differing, differing[:3]


def test_pytorch_bin_format_loads_the_same(exported, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from norbert.conversion.export import ExportConfig, export_to_hf

    run = exported("gelu")
    export_to_hf(ExportConfig(
        checkpoint=run["ckpt"], bert_config_file=str(run["work"] / "bert_config.json"),
        vocab_file=str(os.path.join(run["hf"], "vocab.txt")), output_dir=str(tmp_path / "bin"),
        format="pytorch_bin"), do_lower_case=True)
    assert "pytorch_model.bin" in os.listdir(str(tmp_path / "bin"))
    model = transformers.BertForPreTraining.from_pretrained(str(tmp_path / "bin"))
    mlm, nsp = hf_log_probs(torch, model.eval(), run["features"])
    assert np.abs(_real(mlm, run["features"]) - _real(run["mlm"], run["features"])).max() < 1e-4


def test_export_then_import_gives_back_the_same_checkpoint(exported, tmp_path):
    tf = pytest.importorskip("tensorflow").compat.v1
    from norbert.conversion.importing import ImportConfig, import_from_hf

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
    from norbert.conversion.export import ExportConfig, export_to_hf

    run = exported("gelu")
    small_config(intermediate_size=48).to_json_file(str(tmp_path / "wrong.json"))
    with pytest.raises(NorbertError, match=r"intermediate/dense/kernel has shape \[32, 64\] but "
                                           r"the config needs \[32, 48\]"):
        export_to_hf(ExportConfig(
            checkpoint=run["ckpt"], bert_config_file=str(tmp_path / "wrong.json"),
            vocab_file=os.path.join(run["hf"], "vocab.txt"),
            output_dir=str(tmp_path / "out")), do_lower_case=True)
    assert os.listdir(str(tmp_path)) == ["wrong.json"]  # no output, no staging left


@pytest.mark.parametrize("change", [5, -5], ids=["more tokens", "fewer tokens"])
def test_export_with_a_vocab_of_another_size(exported, tmp_path, change):
    """More tokens than the model's embedding rows: an error, nothing written. Fewer: a
    warning (right only for a padded table), and the export goes on."""
    pytest.importorskip("tensorflow")
    from norbert.conversion.export import VocabSizeWarning, export_to_hf

    run = exported("gelu")
    tokens = open(os.path.join(run["hf"], "vocab.txt"), encoding="utf-8").read().split("\n")[:-1]
    tokens = tokens + ["[extra%d]" % i for i in range(change)] if change > 0 else tokens[:change]
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    settings = dict(checkpoint=run["ckpt"], bert_config_file=str(run["work"] / "bert_config.json"),
                    vocab_file=str(tmp_path / "vocab.txt"), do_lower_case=True,
                    output_dir=str(tmp_path / "out"))
    message = r"vocab.txt has %d tokens but the model's vocab_size is %d" % (
        len(tokens), len(tokens) - change)
    if change > 0:
        with pytest.raises(NorbertError, match=message):
            export_to_hf(**settings)
        assert not (tmp_path / "out").exists()
    else:
        with pytest.warns(VocabSizeWarning, match=message):
            export_to_hf(**settings)
        assert (tmp_path / "out" / "model.safetensors").exists()


def test_export_without_heads_is_a_bare_bert_model(tmp_path, uncased_vocab_path):
    tf = pytest.importorskip("tensorflow").compat.v1
    from norbert.conversion.export import ExportConfig, export_to_hf
    from norbert.model.checkpoints import save_checkpoint

    config = small_config()
    rng = np.random.RandomState(1)
    save_checkpoint({p.name: rng.randn(*p.shape).astype(np.float32)
                     for p in hf_format.parameter_table(config) if p.group in ("bert", "pooler")},
                    str(tmp_path / "model.ckpt"))
    config.to_json_file(str(tmp_path / "bert_config.json"))
    report = export_to_hf(ExportConfig(
        checkpoint=str(tmp_path / "model.ckpt"),
        bert_config_file=str(tmp_path / "bert_config.json"), vocab_file=uncased_vocab_path,
        output_dir=str(tmp_path / "hf")), do_lower_case=True)
    assert report.architecture == "BertModel"
    assert report.missing_heads == ["masked_lm", "next_sentence"]
    del tf


def test_model_card_names_the_objective_recorded_beside_the_checkpoint(tmp_path,
                                                                       uncased_vocab_path):
    pytest.importorskip("tensorflow")
    from norbert.conversion.export import export_to_hf
    from norbert.model import objective_record
    from norbert.model.checkpoints import save_checkpoint

    config = small_config()
    rng = np.random.RandomState(2)
    run = tmp_path / "run"
    save_checkpoint({p.name: rng.randn(*p.shape).astype(np.float32)
                     for p in hf_format.parameter_table(config)}, str(run / "model.ckpt-7"))
    config.to_json_file(str(tmp_path / "bert_config.json"))
    settings = dict(checkpoint=str(run), bert_config_file=str(tmp_path / "bert_config.json"),
                    vocab_file=uncased_vocab_path, do_lower_case=True)
    hf = tmp_path / "hf"
    report = export_to_hf(output_dir=str(hf), **settings)
    assert not (hf / "README.md").exists() and "no model card" in report.summary()

    objective_record.note(str(run), "mlm")  # as run_pretraining does on masked-LM-only records
    report = export_to_hf(output_dir=str(hf), **settings)
    card = (hf / "README.md").read_text()
    assert "README.md" in report.files and "README.md says the objective: mlm" in report.summary()
    assert "Trained objective: masked LM only" in card and "`model.ckpt-7`" in card
    assert "next-sentence head (`cls.seq_relationship`) and the pooler (`bert.pooler`) are " \
           "not trained by masked LM alone: kept unchanged from the start" in card
    assert card.startswith("---\nlibrary_name: transformers\n")

    objective_record.note(str(run), "mlm_nsp")  # resumed on Google's pairs: replaced
    export_to_hf(output_dir=str(hf), **settings)
    card = (hf / "README.md").read_text()
    assert "Trained objective: masked LM + next sentence" in card and "not trained" not in card
    assert "Earlier runs into the same folder trained masked LM only." in card

    (hf / "README.md").write_text("# my model\n")  # the user's own card stays
    report = export_to_hf(output_dir=str(hf), **settings)
    assert (hf / "README.md").read_text() == "# my model\n"
    assert "not one an export wrote; kept as it is" in report.summary()
    assert "README.md" not in report.files
