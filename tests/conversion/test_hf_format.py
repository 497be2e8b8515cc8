"""``norbert.conversion.hf_format``: the pure name, shape and config mapping, on its own and
against the models norbert and transformers really build."""

import pytest

from norbert import NorbertError

from norbert.conversion import hf_format
from small_bert import placeholders, small_config


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


# ---- the table against the two real models ----------------------------------------------


def test_parameter_table_is_what_norbert_builds():
    tf = pytest.importorskip("tensorflow").compat.v1
    from norbert.model import heads

    config = small_config()
    with tf.Graph().as_default():
        heads.pretraining_forward(config, placeholders(tf, 2), is_training=False)
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
