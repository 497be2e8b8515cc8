import dataclasses
import json
import os
import subprocess
import sys

import pytest

from norbert import BertConfig, NorbertError
from norbert.model.bert_config import ACTIVATION_ALIASES

# The bert_config.json that ships with Google's multi_cased_L-12_H-768_A-12, as published:
# it carries pooler_* and directionality keys that the model does not use.
GOOGLE_MULTILINGUAL = """{
  "attention_probs_dropout_prob": 0.1,
  "directionality": "bidi",
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 768,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "max_position_embeddings": 512,
  "num_attention_heads": 12,
  "num_hidden_layers": 12,
  "pooler_fc_size": 768,
  "pooler_num_attention_heads": 12,
  "pooler_num_fc_layers": 3,
  "pooler_size_per_head": 128,
  "pooler_type": "first_token_transform",
  "type_vocab_size": 2,
  "vocab_size": 119547
}
"""

SMALL = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    max_position_embeddings=64,
    type_vocab_size=2,
    initializer_range=0.02,
)


def write(tmp_path, text, name="bert_config.json"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_reads_googles_released_config_and_writes_it_back_unchanged(tmp_path):
    path = write(tmp_path, GOOGLE_MULTILINGUAL)
    config = BertConfig.from_json_file(path)
    assert config.vocab_size == 119547
    assert config.hidden_size == 768 and config.num_attention_heads == 12
    assert config.attention_head_size == 64
    assert config.type_vocab_size == 2
    assert config.activation == "gelu"
    assert config.extra["pooler_type"] == "first_token_transform"
    assert config.to_json_string() == GOOGLE_MULTILINGUAL

    out = str(tmp_path / "copy.json")
    config.to_json_file(out)
    with open(out, encoding="utf-8") as f:
        assert f.read() == GOOGLE_MULTILINGUAL
    assert BertConfig.from_json_file(out) == config
    # No temporary file left behind.
    assert sorted(os.listdir(str(tmp_path))) == ["bert_config.json", "copy.json"]


def test_defaults_are_bert_base_and_round_trip(tmp_path):
    config = BertConfig(vocab_size=30522)
    assert (config.hidden_size, config.num_hidden_layers) == (768, 12)
    assert config.num_attention_heads == 12
    assert config.intermediate_size == 3072 and config.max_position_embeddings == 512
    path = str(tmp_path / "c.json")
    config.to_json_file(path)
    assert BertConfig.from_json_file(path) == config
    assert json.loads(config.to_json_string()) == config.to_dict()
    assert set(config.to_dict()) == set(BertConfig.field_names())
    assert len(BertConfig.field_names()) == 11


def test_config_is_frozen_and_replace_checks():
    config = BertConfig(**SMALL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.hidden_size = 64
    assert config.replace(hidden_act="relu").hidden_act == "relu"
    assert hash(config) == hash(BertConfig(**SMALL))
    with pytest.raises(NorbertError, match="hidden_size"):
        config.replace(hidden_size=30)
    with pytest.raises(NorbertError, match="no field 'hidden_layers'"):
        config.replace(hidden_layers=3)


def test_whole_number_probabilities_become_floats():
    config = BertConfig(**dict(SMALL, hidden_dropout_prob=0, attention_probs_dropout_prob=0))
    assert config.hidden_dropout_prob == 0.0 and isinstance(config.hidden_dropout_prob, float)


@pytest.mark.parametrize(
    "name, canonical",
    [
        ("gelu", "gelu"),  # Google's meaning: the tanh approximation
        ("GELU", "gelu"),
        ("gelu_new", "gelu"),  # transformers' names for the tanh form
        ("gelu_pytorch_tanh", "gelu"),
        ("gelu_exact", "gelu_exact"),  # the erf form (transformers' "gelu")
        ("relu", "relu"),
        ("tanh", "tanh"),
        ("linear", "linear"),
    ],
)
def test_activation_names(name, canonical):
    assert BertConfig(**dict(SMALL, hidden_act=name)).activation == canonical
    assert canonical in ACTIVATION_ALIASES.values()


def error_for(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(NorbertError) as info:
        BertConfig.from_json_file(path)
    message = str(info.value)
    assert path in message and "\n" not in message
    return message


def test_malformed_json_names_the_file(tmp_path):
    assert "not valid JSON" in error_for(tmp_path, '{"vocab_size": 99,')


def test_json_that_is_not_an_object(tmp_path):
    assert "JSON object" in error_for(tmp_path, "[1, 2]")


def test_missing_field_is_named(tmp_path):
    values = dict(SMALL)
    del values["num_attention_heads"]
    assert "'num_attention_heads' is missing" in error_for(tmp_path, json.dumps(values))


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("hidden_size", "768", "must be an integer"),
        ("vocab_size", 99.0, "must be an integer"),
        ("num_hidden_layers", True, "must be an integer"),
        ("num_hidden_layers", 0, "at least 1"),
        ("hidden_dropout_prob", "0.1", "must be a number"),
        ("attention_probs_dropout_prob", 1.0, "dropout rate"),
        ("hidden_dropout_prob", -0.1, "dropout rate"),
        ("initializer_range", 0, "positive"),
        ("hidden_act", 3, "must be a string"),
        ("hidden_act", "swish", "norbert does not know"),
        ("hidden_size", 30, "multiple of num_attention_heads"),
    ],
)
def test_bad_field_is_named(tmp_path, field, value, words):
    message = error_for(tmp_path, json.dumps(dict(SMALL, **{field: value})))
    assert "field %r" % field in message and words in message


def test_missing_or_binary_file(tmp_path):
    missing = str(tmp_path / "nope.json")
    with pytest.raises(NorbertError, match="nope.json"):
        BertConfig.from_json_file(missing)
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe{")
    with pytest.raises(NorbertError, match="UTF-8"):
        BertConfig.from_json_file(str(path))


def test_errors_name_the_flag_the_path_came_from(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"vocab_size": 65,')
    with pytest.raises(NorbertError, match=r"^--bert_config_file: bert config .*bad.json is not "
                                           r"valid JSON"):
        BertConfig.from_json_file(str(bad), flag="--bert_config_file")
    with pytest.raises(NorbertError, match=r"^--bert_config_file: cannot read bert config "
                                           r".*nope.json: no such file"):
        BertConfig.from_json_file(str(tmp_path / "nope.json"), flag="--bert_config_file")
    with pytest.raises(NorbertError, match=r"^bert config .*bad.json is not valid JSON"):
        BertConfig.from_json_file(str(bad))  # no flag: the file alone


def test_writing_into_a_missing_folder_creates_it(tmp_path):
    path = tmp_path / "no" / "such" / "config.json"
    BertConfig(**SMALL).to_json_file(str(path))
    assert BertConfig.from_json_file(str(path)).to_dict() == BertConfig(**SMALL).to_dict()


def test_writing_under_a_file_fails_cleanly(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(NorbertError, match="cannot write .*a.txt/config.json"):
        BertConfig(**SMALL).to_json_file(str(tmp_path / "a.txt" / "config.json"))


def test_bad_values_fail_at_construction_too():
    with pytest.raises(NorbertError, match="hidden_act"):
        BertConfig(**dict(SMALL, hidden_act="swish"))


def test_importing_norbert_does_not_import_tensorflow():
    code = (
        "import sys, norbert; from norbert import BertConfig; "
        "BertConfig(vocab_size=5); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], stderr=subprocess.PIPE)
    assert done.returncode == 0, done.stderr.decode()


def test_unknown_keys_are_kept_and_a_run_trains_with_them(tmp_path, corpus_paths,
                                                          uncased_vocab_path):
    """Released configs carry keys of their own (pooler_*, directionality): kept, not refused."""
    pytest.importorskip("tensorflow")
    import norbert
    from helpers import english_records, tiny_bert_config

    extras = {"directionality": "bidi", "pooler_fc_size": 32, "pooler_num_attention_heads": 4}
    values = json.loads(tiny_bert_config(**extras))
    path = write(tmp_path, json.dumps(values))
    config = BertConfig.from_json_file(path)
    assert config.extra == extras
    assert json.loads(config.to_json_string()) == values
    english_records(tmp_path, corpus_paths, uncased_vocab_path, 4000, max_seq_length=32,
                    max_predictions_per_seq=5, dupe_factor=1, progress=False)
    norbert.run_pretraining(input_file=str(tmp_path / "train.tfrecord"), bert_config_file=path,
                            output_dir=str(tmp_path / "run"), do_train=True, num_train_steps=1,
                            num_warmup_steps=0, learning_rate=1e-4, train_batch_size=2,
                            max_seq_length=32, max_predictions_per_seq=5)
    assert os.path.exists(str(tmp_path / "run" / "model.ckpt-1.index"))
