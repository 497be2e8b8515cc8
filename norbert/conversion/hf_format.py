"""Hugging Face's BERT layout, spelled out as pure functions: names, shapes, config, tokenizer.

Nothing here reads or writes files, or imports TensorFlow or torch; ``norbert.conversion.export``
and ``norbert.conversion.importing`` do the I/O. Keeping the mapping here means every rule is
testable on its own.

Google's variable names (``norbert.model.modeling``, ``norbert.model.heads``) and transformers'
parameter keys differ in four regular ways and three special cases::

    bert/encoder/layer_3/attention/self/query/kernel  [H, H]  ->  bert.encoder.layer.3.attention.self.query.weight  [H, H]^T
    .../LayerNorm/gamma, .../LayerNorm/beta                   ->  .../LayerNorm.weight, .../LayerNorm.bias
    bert/embeddings/word_embeddings  [V, H]                   ->  bert.embeddings.word_embeddings.weight  [V, H]
    cls/predictions/output_bias  [V]                          ->  cls.predictions.bias
    cls/seq_relationship/output_weights  [2, H]               ->  cls.seq_relationship.weight  (NOT transposed:
                                                                  Google already stores it [out, in])
    cls/seq_relationship/output_bias  [2]                     ->  cls.seq_relationship.bias

A TF dense kernel is ``[in, out]`` (``x @ kernel``) and a torch ``Linear`` weight ``[out, in]``
(``x @ weight.T``), hence the transpose of every ``kernel``. The masked-LM decoder weight is the
word-embedding table in both worlds (tied): transformers names it
``cls.predictions.decoder.weight`` but does not store it, and ties ``cls.predictions.decoder.bias``
to ``cls.predictions.bias`` likewise.
"""

import collections
import json
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from norbert.data.features import MLM, MLM_NSP
from norbert.model.bert_config import BertConfig
from norbert.errors import NorbertError
from norbert.tokenization.options import TokenizerOptions
from norbert.tokenization.vocab import CLS, MASK, PAD, SEP, UNK

# Transformers' LayerNorm epsilon must equal the one norbert.model.modeling hard-codes (Google's).
LAYER_NORM_EPS = 1e-12

# Parameter groups: the embeddings and encoder every model has; the pooler, which Google's
# checkpoints always have but transformers' BertForMaskedLM leaves out; the two pretraining heads.
# Every group but BERT may be absent as a whole; training then initialises it.
BERT, POOLER, MASKED_LM, NEXT_SENTENCE = "bert", "pooler", "masked_lm", "next_sentence"
GROUPS = (BERT, POOLER, MASKED_LM, NEXT_SENTENCE)

# (heads present) -> transformers class that holds exactly those parameters.
ARCHITECTURES = {
    (True, True): "BertForPreTraining",
    (True, False): "BertForMaskedLM",
    (False, True): "BertForNextSentencePrediction",
    (False, False): "BertModel",
}

# Canonical norbert activation (BertConfig.activation) -> transformers' name of the SAME function.
# Google's "gelu" is the tanh approximation, transformers' "gelu" the erf form: mapping the name
# instead of the function leaves logit differences of about 1e-3. "gelu_new" rather than
# "gelu_pytorch_tanh" because every transformers version since 2.x knows it.
TO_HF_ACTIVATION = {
    "gelu": "gelu_new",
    "gelu_exact": "gelu",
    "relu": "relu",
    "tanh": "tanh",
    "linear": "linear",
}

# transformers' activation name -> the name written to bert_config.json. Only functions that
# norbert.model.modeling computes exactly; gelu_fast is the tanh formula with the constant rounded.
FROM_HF_ACTIVATION = {
    "gelu": "gelu_exact",
    "gelu_python": "gelu_exact",
    "gelu_new": "gelu",
    "gelu_pytorch_tanh": "gelu",
    "gelu_python_tanh": "gelu",
    "gelu_fast": "gelu",
    "relu": "relu",
    "tanh": "tanh",
    "linear": "linear",
}

# HF keys that carry no weights of their own: index buffers, and the tied decoder.
HF_BUFFERS = ("bert.embeddings.position_ids", "bert.embeddings.token_type_ids")
HF_TIED = {
    "cls.predictions.decoder.weight": "bert/embeddings/word_embeddings",
    "cls.predictions.decoder.bias": "cls/predictions/output_bias",
}

_SPECIAL_TO_HF = {
    "cls/predictions/output_bias": "cls.predictions.bias",
    "cls/seq_relationship/output_weights": "cls.seq_relationship.weight",
    "cls/seq_relationship/output_bias": "cls.seq_relationship.bias",
}
_SPECIAL_FROM_HF = {v: k for k, v in _SPECIAL_TO_HF.items()}
_EMBEDDING_TABLES = ("word_embeddings", "token_type_embeddings", "position_embeddings")
_LAYER_RE = re.compile(r"^layer_(\d+)$")
# The HF BertModel's own modules: keys of a bare BertModel start with one of these.
_BARE_PREFIXES = ("embeddings.", "encoder.", "pooler.")

# One model parameter: its Google name, its TF shape, and the group it belongs to.
Param = collections.namedtuple("Param", "name shape group")


# ---- names ------------------------------------------------------------------------------


def tf_to_hf_name(name: str) -> Optional[str]:
    """transformers' key for a Google variable name; None for names that are not parameters
    of BERT or its pretraining heads by the naming rules (optimizer slots, step, others)."""
    if name in _SPECIAL_TO_HF:
        return _SPECIAL_TO_HF[name]
    parts = name.split("/")
    if parts[0] not in ("bert", "cls") or len(parts) < 3:
        return None
    if parts[:2] == ["bert", "embeddings"] and len(parts) == 3 and parts[2] in _EMBEDDING_TABLES:
        return "bert.embeddings.%s.weight" % parts[2]
    leaf = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}.get(parts[-1])
    if leaf is None:
        return None
    path = []
    for part in parts[:-1]:
        match = _LAYER_RE.match(part)
        path.extend(["layer", match.group(1)] if match else [part])
    return ".".join(path + [leaf])


def hf_to_tf_name(key: str) -> Optional[str]:
    """Google's variable name for a transformers key, with or without the ``bert.`` prefix
    (a bare ``BertModel`` saves ``embeddings.…``); None for keys with no variable of their own
    (buffers, the tied decoder, task heads such as ``classifier.weight``).

    Old checkpoints (pytorch-pretrained-bert) call the LayerNorm parameters gamma and beta;
    they are understood too.
    """
    if key.startswith(_BARE_PREFIXES):
        key = "bert." + key
    if key in _SPECIAL_FROM_HF:
        return _SPECIAL_FROM_HF[key]
    if key in HF_TIED or key in HF_BUFFERS:
        return None
    parts = key.split(".")
    if parts[0] not in ("bert", "cls") or len(parts) < 3:
        return None
    if parts[:2] == ["bert", "embeddings"] and len(parts) == 4 and parts[2] in _EMBEDDING_TABLES:
        return "bert/embeddings/%s" % parts[2] if parts[3] == "weight" else None
    module, leaf = parts[-2], parts[-1]
    if module == "LayerNorm":
        leaf = {"weight": "gamma", "bias": "beta", "gamma": "gamma", "beta": "beta"}.get(leaf)
    else:
        leaf = {"weight": "kernel", "bias": "bias"}.get(leaf)
    if leaf is None:
        return None
    path, i = [], 0
    body = parts[:-1]
    while i < len(body):
        if body[i] == "layer" and i + 1 < len(body) and body[i + 1].isdigit():
            path.append("layer_%s" % body[i + 1])
            i += 2
        else:
            path.append(body[i])
            i += 1
    return "/".join(path + [leaf])


def is_transposed(name: str) -> bool:
    """True for the Google variables stored [in, out], which torch stores [out, in]."""
    return name.endswith("/kernel")


def parameter_table(config: BertConfig) -> List[Param]:
    """Every parameter of BERT and both pretraining heads for ``config``: Google's names and TF
    shapes, in the order of Google's checkpoints' graph (embeddings, layers, pooler, heads)."""
    h, i, v = config.hidden_size, config.intermediate_size, config.vocab_size
    table = []

    def add(name, shape, group=BERT):
        table.append(Param(name, tuple(shape), group))

    def norm(scope, group=BERT):
        add(scope + "/LayerNorm/beta", [h], group)
        add(scope + "/LayerNorm/gamma", [h], group)

    def dense(scope, n_in, n_out, group=BERT):
        add(scope + "/kernel", [n_in, n_out], group)
        add(scope + "/bias", [n_out], group)

    add("bert/embeddings/word_embeddings", [v, h])
    add("bert/embeddings/token_type_embeddings", [config.type_vocab_size, h])
    add("bert/embeddings/position_embeddings", [config.max_position_embeddings, h])
    norm("bert/embeddings")
    for index in range(config.num_hidden_layers):
        layer = "bert/encoder/layer_%d" % index
        for projection in ("query", "key", "value"):
            dense(layer + "/attention/self/" + projection, h, h)
        dense(layer + "/attention/output/dense", h, h)
        norm(layer + "/attention/output")
        dense(layer + "/intermediate/dense", h, i)
        dense(layer + "/output/dense", i, h)
        norm(layer + "/output")
    dense("bert/pooler/dense", h, h, POOLER)
    dense("cls/predictions/transform/dense", h, h, MASKED_LM)
    norm("cls/predictions/transform", MASKED_LM)
    add("cls/predictions/output_bias", [v], MASKED_LM)
    add("cls/seq_relationship/output_weights", [2, h], NEXT_SENTENCE)
    add("cls/seq_relationship/output_bias", [2], NEXT_SENTENCE)
    return table


def hf_shape(param: Param) -> Tuple[int, ...]:
    """The parameter's shape in transformers' layout."""
    return tuple(reversed(param.shape)) if is_transposed(param.name) else param.shape


# ---- config -----------------------------------------------------------------------------


def hf_config(config: BertConfig, architecture: str, pad_token_id: int) -> Dict[str, Any]:
    """transformers' ``config.json`` for ``config``: every size, and the activation mapped by
    function (see ``TO_HF_ACTIVATION``)."""
    return {
        "architectures": [architecture],
        "model_type": "bert",
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "intermediate_size": config.intermediate_size,
        "hidden_act": TO_HF_ACTIVATION[config.activation],
        "hidden_dropout_prob": config.hidden_dropout_prob,
        "attention_probs_dropout_prob": config.attention_probs_dropout_prob,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size,
        "initializer_range": config.initializer_range,
        "layer_norm_eps": LAYER_NORM_EPS,
        "pad_token_id": pad_token_id,
        "position_embedding_type": "absolute",
        "classifier_dropout": None,
        "is_decoder": False,
        "add_cross_attention": False,
        "use_cache": True,
        # The masked-LM decoder IS the word-embedding table (Google's model has no other).
        "tie_word_embeddings": True,
        "dtype": "float32",
    }


# transformers' BertConfig defaults, for the few keys an old config.json may leave out.
_HF_DEFAULTS = {
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.02,
    "type_vocab_size": 2,
    "max_position_embeddings": 512,
    "hidden_act": "gelu",
}
_HF_REQUIRED = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
)


def bert_config_from_hf(values: Mapping[str, Any], source: str) -> BertConfig:
    """Our ``BertConfig`` for a transformers ``config.json`` (parsed), with the activation
    carried over exactly; a model norbert.model.modeling cannot reproduce is a ``NorbertError``."""
    if not isinstance(values, Mapping):
        raise NorbertError("%s: expected a JSON object, got %s" % (source, type(values).__name__))
    model_type = values.get("model_type", "bert")  # configs older than transformers 3 lack it
    if model_type != "bert":
        raise NorbertError(
            "%s: model_type is %r, not 'bert'; norbert imports BERT models only (give the "
            "folder of a BERT model)" % (source, model_type)
        )
    missing = [name for name in _HF_REQUIRED if name not in values]
    if missing:
        raise NorbertError(
            "%s: field %r is missing; is this a transformers BERT config.json?"
            % (source, missing[0])
        )

    def unsupported(field, value, why):
        raise NorbertError(
            "%s: %s is %r, which norbert's BERT cannot reproduce (%s)" % (source, field, value, why)
        )

    eps = values.get("layer_norm_eps", LAYER_NORM_EPS)
    if not isinstance(eps, (int, float)) or abs(eps - LAYER_NORM_EPS) > 1e-15:
        unsupported("layer_norm_eps", eps, "Google's BERT uses 1e-12")
    position = values.get("position_embedding_type", "absolute")
    if position != "absolute":
        unsupported("position_embedding_type", position, "only absolute positions exist there")
    for flag in ("is_decoder", "add_cross_attention"):
        if values.get(flag):
            unsupported(flag, values[flag], "it is an encoder without cross-attention")
    act = values.get("hidden_act", _HF_DEFAULTS["hidden_act"])
    if not isinstance(act, str) or act.lower() not in FROM_HF_ACTIVATION:
        unsupported(
            "hidden_act", act, "supported: %s" % ", ".join(sorted(FROM_HF_ACTIVATION))
        )
    fields = {name: values.get(name, _HF_DEFAULTS.get(name)) for name in BertConfig.field_names()}
    fields["hidden_act"] = FROM_HF_ACTIVATION[act.lower()]
    return BertConfig.from_dict(fields, source=source)


# ---- tokenizer files --------------------------------------------------------------------


def tokenizer_config(do_lower_case: bool, model_max_length: int,
                     options: TokenizerOptions = TokenizerOptions(),
                     vocab: Optional[Mapping[str, int]] = None) -> Dict[str, Any]:
    """``tokenizer_config.json``: the WordPiece settings in transformers' words.

    strip_accents None means "strip when lower-casing", as Google's tokenizer does;
    tokenize_chinese_chars splits CJK ideographs into single tokens, as Google's does.
    transformers 5's BertTokenizer has no never_split: the never-split words (tokens of
    ``vocab``) become added tokens matched as written and as whole words, which keeps them
    whole where they stand between spaces, as norbert does (transformers also keeps them whole
    next to punctuation, "<url>," where norbert splits "<", "url", ">", ",").
    """
    values = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": bool(do_lower_case),
        "strip_accents": options.strip_accents,
        "tokenize_chinese_chars": options.tokenize_chinese_chars,
        "do_basic_tokenize": True,
        "model_max_length": int(model_max_length),
        "clean_up_tokenization_spaces": False,
    }
    if options.never_split:
        values["added_tokens_decoder"] = {
            str(vocab[word]): {"content": word, "lstrip": False, "rstrip": False,
                               "normalized": False, "single_word": True, "special": False}
            for word in options.never_split
        }
    values.update(special_tokens_map())
    return values


def stated_tokenizer(values: Mapping[str, Any]) -> Tuple[Optional[bool], TokenizerOptions]:
    """(do_lower_case, or None when unstated; the options) from a tokenizer_config.json's
    values, the inverse of ``tokenizer_config``; what it cannot read is taken as Google's."""
    lower = values.get("do_lower_case")
    strip = values.get("strip_accents")
    cjk = values.get("tokenize_chinese_chars")
    added = values.get("added_tokens_decoder")
    whole = [e.get("content") for e in (added.values() if isinstance(added, dict) else ())
             if isinstance(e, dict) and e.get("single_word") and not e.get("special")]
    strip = strip if isinstance(strip, bool) else None
    cjk = cjk if isinstance(cjk, bool) else True
    lower = lower if isinstance(lower, bool) else None
    casing = {} if lower is None else {"do_lower_case": lower}
    try:
        options = TokenizerOptions(strip, cjk, tuple(dict.fromkeys(whole)), **casing)
    except NorbertError:  # added tokens that are no words: not never-split words
        options = TokenizerOptions(strip, cjk, **casing)
    return lower, options


def special_tokens_map() -> Dict[str, str]:
    return {
        "unk_token": UNK,
        "sep_token": SEP,
        "pad_token": PAD,
        "cls_token": CLS,
        "mask_token": MASK,
    }


def json_bytes(values: Mapping[str, Any]) -> bytes:
    return (json.dumps(values, indent=2, sort_keys=True) + "\n").encode("utf-8")


# ---- the model card: which objective trained the heads ----------------------------------
# The card's second part, after its metadata: an export replaces a card that has it, and
# leaves any other README.md in the folder (the user's own) as it is.
CARD_MARK = "<!-- model card written by norbert's export: replaced at the next export -->"
_OBJECTIVE_NAMES = {
    MLM: "masked LM only (records of `--objective=mlm`): no next-sentence prediction",
    MLM_NSP: "masked LM + next sentence (Google's BERT objective, records of "
             "`--objective=mlm_nsp`)",
}


def model_card(objectives: List[str], checkpoint: str, present: List[str]) -> str:
    """README.md of an exported folder: which objective trained ``checkpoint``, from the
    objectives of the runs into its folder (oldest first, ``norbert.model.objective_record``),
    and which heads of the ``present`` groups it left untrained."""
    latest, earlier = objectives[-1], objectives[:-1]
    lines = ["---", "library_name: transformers", "pipeline_tag: fill-mask", "tags:", "- bert",
             "---", CARD_MARK, "", "# BERT", "",
             "Exported from the TensorFlow checkpoint `%s`." % checkpoint, "",
             "Trained objective: %s." % _OBJECTIVE_NAMES[latest]]
    untrained = [name for group, name in ((NEXT_SENTENCE, "next-sentence head "
                                           "(`cls.seq_relationship`)"),
                                          (POOLER, "pooler (`bert.pooler`)"))
                 if group in present]
    if latest == MLM and untrained:
        mixed = MLM_NSP in earlier
        lines += ["", "The %s not trained by masked LM alone: kept unchanged from the start of "
                  "its training (%s). Use the model as `BertForMaskedLM` or as an encoder%s."
                  % (" and the ".join(untrained) + (" are" if len(untrained) > 1 else " is"),
                     "as earlier runs into the same folder trained them, with masked LM + next "
                     "sentence" if mixed else "random initial values, or the values of its "
                     "`--init_checkpoint`",
                     "" if mixed else "; `BertForPreTraining`'s next-sentence logits and the "
                     "pooled output carry no training of its own")]
    elif latest == MLM_NSP and MLM in earlier:
        lines += ["", "Earlier runs into the same folder trained masked LM only."]
    return "\n".join(lines) + "\n"
