"""``BertConfig``: the model's shape, read from and written to Google's ``bert_config.json``.

Pure Python: importing this module never imports TensorFlow.

Activation names (``hidden_act``). Google's code and Hugging Face transformers use the same word
for different functions, so the mapping is spelled out here:

=====================  ===========================================  ====================
``hidden_act``         function                                     transformers' name
=====================  ===========================================  ====================
``gelu``               GELU, tanh approximation (Google's meaning)  ``gelu_new``
``gelu_new``           alias of ``gelu`` (transformers' name)       ``gelu_new``
``gelu_pytorch_tanh``  alias of ``gelu`` (transformers' name)       ``gelu_pytorch_tanh``
``gelu_exact``         GELU with erf, x * Phi(x)                    ``gelu``
``relu``               max(0, x)                                    ``relu``
``tanh``               tanh(x)                                      ``tanh``
``linear``             identity                                     ``linear``
=====================  ===========================================  ====================

So a Hugging Face config's ``"gelu"`` must become ``"gelu_exact"`` here, and Google's
``"gelu"`` becomes transformers' ``"gelu_new"``: the two GELUs differ by up to 5e-4 per value,
about 1e-3 in a model's logits.

Names are matched without regard to case, as Google's code does. The name is kept as written,
so a config file round-trips unchanged; :meth:`BertConfig.activation` gives the canonical one.
"""

import dataclasses
import json
import math
from typing import Any, Dict, Mapping, Optional, Tuple

from norbert import fileio
from norbert.errors import NorbertError

# hidden_act (lower-cased) -> canonical function name used by norbert.model.modeling.
ACTIVATION_ALIASES = {
    "gelu": "gelu",
    "gelu_new": "gelu",
    "gelu_pytorch_tanh": "gelu",
    "gelu_exact": "gelu_exact",
    "relu": "relu",
    "tanh": "tanh",
    "linear": "linear",
}

_INT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)
_PROBABILITY_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob")


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """The architecture of a BERT model, field for field Google's ``bert_config.json``.

    The defaults are BERT-base's, except ``vocab_size`` which every model must state. Invalid
    values raise ``NorbertError`` when the object is made, wherever it comes from.
    """

    # Number of WordPiece ids: rows of bert/embeddings/word_embeddings (and of the MLM output).
    vocab_size: int
    # Width H of every encoder layer, of the embeddings and of the pooler.
    hidden_size: int = 768
    # Number of Transformer blocks (bert/encoder/layer_0 ... layer_{L-1}).
    num_hidden_layers: int = 12
    # Attention heads N per layer; hidden_size must be a multiple of it (head size D = H / N).
    num_attention_heads: int = 12
    # Width of the feed-forward ("intermediate") layer inside each block.
    intermediate_size: int = 3072
    # Activation of the feed-forward layer and of the MLM transform; see the module docstring.
    hidden_act: str = "gelu"
    # Dropout rate after the embeddings and after every dense projection (training only).
    hidden_dropout_prob: float = 0.1
    # Dropout rate on the attention probabilities (training only).
    attention_probs_dropout_prob: float = 0.1
    # Rows of the learned position table: the longest sequence the model can ever take.
    max_position_embeddings: int = 512
    # Number of segment (token type) ids; Google's released models use 2.
    type_vocab_size: int = 16
    # Standard deviation of the truncated-normal initializer of all weight matrices.
    initializer_range: float = 0.02
    # Keys of the JSON file that norbert does not use (the multilingual models carry pooler_*
    # and directionality keys): kept so that writing the config back loses nothing.
    extra: Mapping[str, Any] = dataclasses.field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def __post_init__(self) -> None:
        for name, value in _checked(self._fields(), "bert config").items():
            object.__setattr__(self, name, value)
        if not isinstance(self.extra, Mapping):
            raise NorbertError("bert config: 'extra' must be a mapping, got %r" % (self.extra,))
        # A private copy (a plain dict, so the config still pickles and deep-copies).
        object.__setattr__(self, "extra", dict(self.extra))

    def _fields(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self.field_names()}

    # ---- derived values -------------------------------------------------------------------

    @property
    def activation(self) -> str:
        """The canonical name: gelu (tanh form), gelu_exact, relu, tanh or linear."""
        return ACTIVATION_ALIASES[self.hidden_act.lower()]

    @property
    def has_dropout(self) -> bool:
        """Whether training drops anything (a rate above 0)."""
        return bool(self.hidden_dropout_prob or self.attention_probs_dropout_prob)

    @property
    def attention_head_size(self) -> int:
        """D = H / N."""
        return self.hidden_size // self.num_attention_heads

    @staticmethod
    def field_names() -> Tuple[str, ...]:
        """The eleven fields of ``bert_config.json``, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(BertConfig) if f.name != "extra")

    # ---- JSON -----------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "bert config") -> "BertConfig":
        """Builds a config from parsed JSON; every field must be present, other keys are kept."""
        if not isinstance(values, Mapping):
            raise NorbertError(
                "%s: expected a JSON object of config fields, got %s"
                % (source, type(values).__name__)
            )
        missing = [name for name in cls.field_names() if name not in values]
        if missing:
            raise NorbertError(
                "%s: field %r is missing (a bert_config.json needs all of %s)"
                % (source, missing[0], ", ".join(cls.field_names()))
            )
        known = _checked({name: values[name] for name in cls.field_names()}, source)
        extra = {k: v for k, v in values.items() if k not in known}
        return cls(extra=extra, **known)

    @classmethod
    def from_json_string(cls, text: str, source: str = "bert config") -> "BertConfig":
        try:
            values = json.loads(text)
        except ValueError as e:
            raise NorbertError("%s is not valid JSON: %s" % (source, e)) from None
        return cls.from_dict(values, source=source)

    @classmethod
    def from_json_file(cls, path: str, flag: Optional[str] = None) -> "BertConfig":
        """Reads a ``bert_config.json`` (local or ``gs://``); errors name the file and field,
        after ``flag`` (``"--bert_config_file"``) when the path came from one."""
        try:
            data = fileio.read_bytes(path, what="bert config")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise NorbertError("bert config %s is not UTF-8 text" % path) from None
            return cls.from_json_string(text, source="bert config %s" % path)
        except NorbertError as e:
            if flag is None:
                raise
            raise NorbertError("%s: %s" % (flag, e)) from None

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object: the eleven fields plus any extra keys read from a file."""
        values = dict(self.extra)
        values.update((name, getattr(self, name)) for name in self.field_names())
        return values

    def to_json_string(self) -> str:
        """Google's layout: two-space indent, sorted keys, a final newline."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str) -> None:
        """Writes the JSON atomically: readers never see a half-written file."""
        with fileio.atomic_output(path, "wb") as f:
            f.write(self.to_json_string().encode("utf-8"))

    def replace(self, **changes: Any) -> "BertConfig":
        """A copy with some fields changed (checked like any new config)."""
        unknown = sorted(set(changes) - set(self.field_names()) - {"extra"})
        if unknown:
            raise NorbertError("bert config has no field %r" % unknown[0])
        return dataclasses.replace(self, **changes)


def _checked(values: Dict[str, Any], source: str) -> Dict[str, Any]:
    """The field values, numbers normalised (JSON may say 0 for 0.0); ``NorbertError`` naming
    ``source`` and the field for the first bad one."""

    def fail(name: str, problem: str) -> None:
        raise NorbertError("%s: field %r %s" % (source, name, problem))

    out = dict(values)
    for name in _INT_FIELDS:
        value = out[name]
        if isinstance(value, bool) or not isinstance(value, int):
            fail(name, "must be an integer, got %r" % (value,))
        if value < 1:
            fail(name, "must be at least 1, got %d" % value)
    for name in _PROBABILITY_FIELDS + ("initializer_range",):
        value = out[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(name, "must be a number, got %r" % (value,))
        if not math.isfinite(value):
            fail(name, "must be finite, got %r" % (value,))
        out[name] = float(value)
    for name in _PROBABILITY_FIELDS:
        if not 0.0 <= out[name] < 1.0:
            fail(name, "is a dropout rate and must be in [0, 1), got %r" % out[name])
    if out["initializer_range"] <= 0.0:
        fail("initializer_range", "must be positive, got %r" % out["initializer_range"])
    if out["hidden_size"] % out["num_attention_heads"]:
        fail(
            "hidden_size",
            "(%d) must be a multiple of num_attention_heads (%d)"
            % (out["hidden_size"], out["num_attention_heads"]),
        )
    act = out["hidden_act"]
    if not isinstance(act, str):
        fail("hidden_act", "must be a string, got %r" % (act,))
    if act.lower() not in ACTIVATION_ALIASES:
        fail(
            "hidden_act",
            "is %r, which norbert does not know; use one of %s"
            % (act, ", ".join(sorted(ACTIVATION_ALIASES))),
        )
    return out
