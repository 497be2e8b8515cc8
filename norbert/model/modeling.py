"""``BertModel``: the BERT encoder in TF1 graph style, with the variables of Google's checkpoints.

Only ``tensorflow.compat.v1`` symbols that TF 1.15 also has are used (no ``tf.contrib``, no Keras
layers), so the same code runs on TF 1.15, on 2.15 with TPUEstimator and on newer 2.x. Variable
names and shapes are exactly those of Google's released checkpoints, so
``multi_cased_L-12_H-768_A-12`` and friends restore as they are::

    bert/embeddings/{word_embeddings [V, H], token_type_embeddings [T, H],
                     position_embeddings [P, H], LayerNorm/{beta, gamma} [H]}
    bert/encoder/layer_<l>/attention/self/{query, key, value}/{kernel [H, H], bias [H]}
    bert/encoder/layer_<l>/attention/output/dense/{kernel [H, H], bias [H]}
    bert/encoder/layer_<l>/attention/output/LayerNorm/{beta, gamma} [H]
    bert/encoder/layer_<l>/intermediate/dense/{kernel [H, I], bias [I]}
    bert/encoder/layer_<l>/output/dense/{kernel [I, H], bias [H]}
    bert/encoder/layer_<l>/output/LayerNorm/{beta, gamma} [H]
    bert/pooler/dense/{kernel [H, H], bias [H]}

Shape legend for the comments: B batch, S sequence length, H hidden size, N attention heads,
D head size (H / N), I intermediate size, V vocab size, T token types, P max positions.

Precision: ``compute_dtype`` (float32 by default) is the dtype of the activations. In bfloat16
or float16 the variables stay float32 (``norbert.model.precision``'s custom getter casts them on
read); ``dense`` computes in its input's dtype, while layer normalisation, the attention mask
bias and the attention softmax always compute in float32 and cast back. With float32 the graph
is op for op the float32-only one.

Dropout: with ``is_training`` and a ``DropoutKey`` (what the pretraining model_fn passes), every
mask is drawn by a stateless random op from a seed made of (the run's seed, the dropout site,
the batches trained so far, the replica): no random state lives in the session, which TF1
graph mode could not save, so a run resumed from a checkpoint (which holds the batch count)
draws exactly the masks the uninterrupted run would have drawn. The sites are numbered by the
key in the order the graph builds them (the embeddings, then per layer the attention
probabilities, the attention output and the layer output), not by a module-level counter.
Without a key, training dropout is ``tf.nn.dropout``, as Google's (fine-tuning code that builds
``BertModel`` itself). Evaluation has no dropout op at all.
"""

import hashlib
import math
from typing import Callable, List, Optional, Union

import tensorflow.compat.v1 as tf

from norbert.errors import NorbertError
from norbert.model import precision
from norbert.model.bert_config import ACTIVATION_ALIASES, BertConfig

# Layer normalisation's variance epsilon in Google's checkpoints (tf.contrib's layer_norm).
LAYER_NORM_EPSILON = 1e-12
# Added to the attention scores of padding positions: Google's finite stand-in for -infinity,
# which keeps the softmax defined even for a row whose keys are all padding.
MASKED_SCORE = -10000.0

Dim = Union[int, tf.Tensor]


# ---- activations ------------------------------------------------------------------------


def gelu(x: tf.Tensor) -> tf.Tensor:
    """GELU, tanh approximation: Google's ``"gelu"`` (transformers' ``"gelu_new"``)."""
    cube = x * x * x
    return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * cube)))


def gelu_exact(x: tf.Tensor) -> tf.Tensor:
    """GELU as defined, x * Phi(x) with the erf (transformers' ``"gelu"``)."""
    return 0.5 * x * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0))))


_ACTIVATIONS = {
    "gelu": gelu,
    "gelu_exact": gelu_exact,
    "relu": tf.nn.relu,
    "tanh": tf.tanh,
    "linear": None,
}


def get_activation(name: str) -> Optional[Callable[[tf.Tensor], tf.Tensor]]:
    """The function for a ``hidden_act`` name (see ``norbert.model.bert_config``); None means
    identity."""
    canonical = ACTIVATION_ALIASES.get(name.lower()) if isinstance(name, str) else None
    if canonical is None:
        raise NorbertError(
            "unknown activation %r: use one of %s" % (name, ", ".join(sorted(ACTIVATION_ALIASES)))
        )
    return _ACTIVATIONS[canonical]


# ---- building blocks --------------------------------------------------------------------


def create_initializer(initializer_range: float):
    """Truncated normal with standard deviation ``initializer_range``, for every weight matrix."""
    return tf.truncated_normal_initializer(stddev=initializer_range)


def shape_list(tensor: tf.Tensor) -> List[Dim]:
    """The shape, with Python ints where they are known statically and scalars where not."""
    static = tensor.shape.as_list()
    if all(d is not None for d in static):
        return static
    dynamic = tf.shape(tensor)
    return [d if d is not None else dynamic[i] for i, d in enumerate(static)]


def dropout(x: tf.Tensor, rate: float, seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Drops each value with probability ``rate`` (not a keep probability) and scales the kept
    ones by 1 / (1 - rate); 0 is a no-op.

    ``seed`` (int64 [2]) draws the mask statelessly: the same seed, the same mask, in any
    session (see ``DropoutKey``). As ``tf.nn.dropout``: a value is kept where a uniform number
    is at least ``rate``, and the result is ``x * scale * keep`` in ``x``'s dtype; the uniform
    numbers are float32 whatever the compute dtype (bfloat16's would make the share dropped
    coarse). Without ``seed``: ``tf.nn.dropout`` itself, whose random state a session does not
    save (Google's dropout).
    """
    if not rate:
        return x
    if seed is None:
        return tf.nn.dropout(x, rate=rate)
    uniform = tf.random.stateless_uniform(tf.shape(x), seed=seed, dtype=tf.float32)
    keep = tf.cast(uniform >= rate, x.dtype)
    return x * (1.0 / (1.0 - rate)) * keep


def site_seed(seed: int, site: int, batches: tf.Tensor, replica: Dim = 0,
              replicas: int = 1) -> tf.Tensor:
    """The stateless seed [2] (int64) of dropout site number ``site`` for the batch numbered
    ``batches`` (int scalar tensor) on replica ``replica`` of ``replicas``.

    The first half (the generator's key) is a hash of (seed, site), so that every site draws
    from a stream of its own; the second (the counter's high half) is ``batches * replicas +
    replica``, one value per replica per batch.
    """
    digest = hashlib.sha256(b"dropout/%d/%d" % (seed, site)).digest()
    key = int.from_bytes(digest[:8], "big") >> 1  # 63 bits: a non-negative int64
    count = (tf.cast(batches, tf.int64) * replicas
             + tf.cast(replica, tf.int64))  # [] int64
    return tf.stack([tf.constant(key, tf.int64), count])  # [2]


class DropoutKey:
    """What training dropout draws its masks from: (seed, batches trained, replica), and the
    dropout sites numbered in the order the graph builds them.

    With a key, every mask is a function of (``seed``, ``batches``, ``replica``, site) alone:
    no random state lives in the session, so a run resumed from a checkpoint that holds what
    ``batches`` is computed from draws the masks the uninterrupted run would have drawn. The
    site counter is this object's (one key per model_fn call; two models built with one key
    get distinct sites). ``seed`` is a Python int; ``batches`` an integer scalar tensor (the
    micro-batches trained before this one); ``replica`` this replica's number (an int or an
    integer tensor) among ``replicas``.
    """

    def __init__(self, seed: int, batches: tf.Tensor, replica: Dim = 0, replicas: int = 1):
        self.seed, self.batches = int(seed), batches
        self.replica, self.replicas = replica, int(replicas)
        self.sites = 0  # the sites numbered so far

    def apply(self, x: tf.Tensor, rate: float) -> tf.Tensor:
        """``dropout(x, rate)`` with the next site's seed (a rate of 0 takes no site)."""
        if not rate:
            return x
        site, self.sites = self.sites, self.sites + 1
        return dropout(x, rate, site_seed(self.seed, site, self.batches, self.replica,
                                          self.replicas))


def layer_norm(x: tf.Tensor, scope: str = "LayerNorm") -> tf.Tensor:
    """Normalises over the last axis; variables ``<scope>/beta`` and ``<scope>/gamma``.

    Always in float32 (the mean of squares overflows float16 and loses bits in bfloat16); a
    low-precision ``x`` is cast up and the result cast back to its dtype.
    """
    width = x.shape[-1]
    in_dtype = x.dtype
    x = precision.to_float32(x)
    with tf.variable_scope(scope):
        beta = tf.get_variable("beta", [width], initializer=tf.zeros_initializer())
        gamma = tf.get_variable("gamma", [width], initializer=tf.ones_initializer())
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)
        variance = tf.reduce_mean(tf.squared_difference(x, mean), axis=-1, keepdims=True)
        y = (x - mean) * tf.rsqrt(variance + LAYER_NORM_EPSILON) * gamma + beta
        return y if in_dtype == tf.float32 else tf.cast(y, in_dtype)


def dense(
    x: tf.Tensor,
    units: int,
    initializer_range: float,
    activation: Optional[Callable[[tf.Tensor], tf.Tensor]] = None,
    scope: str = "dense",
) -> tf.Tensor:
    """``activation(x @ kernel + bias)`` for a matrix ``x`` [rows, K], with the variables
    ``<scope>/kernel`` [K, units] and ``<scope>/bias`` [units] (``tf.layers.dense``'s names).

    Computes in ``x``'s dtype: the variables are asked for in it (float32 storage under
    ``precision.variable_scope``).
    """
    with tf.variable_scope(scope):
        kernel = tf.get_variable(
            "kernel", [x.shape[-1], units], dtype=x.dtype,
            initializer=create_initializer(initializer_range),
        )
        bias = tf.get_variable("bias", [units], dtype=x.dtype, initializer=tf.zeros_initializer())
        y = tf.nn.bias_add(tf.matmul(x, kernel), bias)
        return activation(y) if activation is not None else y


# ---- the model --------------------------------------------------------------------------


class BertModel:
    """BERT's embeddings, Transformer encoder and pooler, built into the default graph.

    ``input_ids``, ``input_mask`` and ``token_type_ids`` are integer tensors [B, S]; the mask is
    1 for real tokens and 0 for padding (None: all real), the token types default to 0.
    ``is_training`` turns dropout on; with False the graph has no dropout at all.
    ``use_one_hot_embeddings`` looks words up by a one-hot matmul, which is faster on TPU.
    ``scope`` names the outer variable scope, ``bert`` unless given (a second model in the same
    graph needs another scope, or variable reuse set by the caller).
    ``compute_dtype`` (tf.float32, tf.bfloat16 or tf.float16) is the activations' dtype; the
    variables are float32 in every case (see ``norbert.model.precision``).
    ``dropout_key`` (training only) draws the dropout masks statelessly from a ``DropoutKey``,
    so that a resumed run draws the uninterrupted run's; None: ``tf.nn.dropout``, as Google's.
    """

    def __init__(
        self,
        config: BertConfig,
        is_training: bool,
        input_ids: tf.Tensor,
        input_mask: Optional[tf.Tensor] = None,
        token_type_ids: Optional[tf.Tensor] = None,
        use_one_hot_embeddings: bool = False,
        scope: Optional[str] = None,
        compute_dtype: tf.DType = tf.float32,
        dropout_key: Optional[DropoutKey] = None,
    ) -> None:
        if not isinstance(config, BertConfig):
            raise NorbertError(
                "BertModel needs a norbert.BertConfig (BertConfig.from_json_file(path)), got %s"
                % type(config).__name__
            )
        if isinstance(is_training, (tf.Tensor, tf.Variable)):
            # Dropout is decided while the graph is built, as in Google's code.
            raise NorbertError("BertModel: is_training must be a Python bool, not a tensor")
        is_training = bool(is_training)
        self.config = config
        self.is_training = is_training
        hidden_rate = config.hidden_dropout_prob if is_training else 0.0
        attention_rate = config.attention_probs_dropout_prob if is_training else 0.0
        drop = dropout_key.apply if dropout_key is not None else dropout

        input_ids, input_mask, token_type_ids, batch, seq = _checked_inputs(
            config, input_ids, input_mask, token_type_ids
        )  # [B, S] x3, B, S
        compute_dtype = _checked_compute_dtype(compute_dtype)
        with precision.variable_scope(compute_dtype), tf.variable_scope(scope or "bert"):
            with tf.variable_scope("embeddings"):
                self.embedding_table, self.word_embedding_output, self.embedding_output = (
                    _embeddings(config, input_ids, token_type_ids, use_one_hot_embeddings,
                                hidden_rate, compute_dtype, drop)
                )

            with tf.variable_scope("encoder"):
                self.all_encoder_layers = _encoder(
                    config, self.embedding_output, input_mask, batch, seq, hidden_rate,
                    attention_rate, drop,
                )  # L x [B, S, H]
            self.sequence_output = self.all_encoder_layers[-1]  # [B, S, H]

            with tf.variable_scope("pooler"):
                # The sentence vector: the last layer at the first token ([CLS]), through a
                # dense layer with tanh.
                first_token = self.sequence_output[:, 0, :]  # [B, H]
                self.pooled_output = dense(
                    first_token, config.hidden_size, config.initializer_range, tf.tanh
                )  # [B, H]

    def get_pooled_output(self) -> tf.Tensor:
        """[B, H]: the first token's final state through the pooler (tanh)."""
        return self.pooled_output

    def get_sequence_output(self) -> tf.Tensor:
        """[B, S, H]: the last encoder layer."""
        return self.sequence_output

    def get_all_encoder_layers(self) -> List[tf.Tensor]:
        """One [B, S, H] tensor per encoder layer, first to last."""
        return self.all_encoder_layers

    def get_word_embedding_output(self) -> tf.Tensor:
        """[B, S, H]: the word embeddings alone, before positions, types and LayerNorm."""
        return self.word_embedding_output

    def get_embedding_output(self) -> tf.Tensor:
        """[B, S, H]: the encoder's input (words + positions + types, LayerNorm, dropout)."""
        return self.embedding_output

    def get_embedding_table(self) -> tf.Tensor:
        """[V, H]: the word embeddings, which the masked-LM head also uses as output weights
        (the variable itself in float32; its cast to the compute dtype otherwise)."""
        return self.embedding_table


def _checked_inputs(config, input_ids, input_mask, token_type_ids):
    """(input_ids, input_mask, token_type_ids, batch, seq): the inputs checked, a missing mask
    made all ones and missing token types all zeros ([B, S] each); B and S as ``shape_list``
    gives them."""
    input_ids = tf.convert_to_tensor(input_ids)
    if input_ids.shape.ndims != 2 or not input_ids.dtype.is_integer:
        raise NorbertError(
            "BertModel: input_ids must be an integer tensor [batch, seq_length], got %s %s"
            % (input_ids.dtype.name, input_ids.shape)
        )
    batch, seq = shape_list(input_ids)
    if isinstance(seq, int) and seq > config.max_position_embeddings:
        raise NorbertError(
            "BertModel: sequences of %d tokens are longer than max_position_embeddings (%d) "
            "in the bert config: use shorter sequences" % (seq, config.max_position_embeddings)
        )
    if input_mask is None:
        input_mask = tf.ones([batch, seq], dtype=tf.int32)
    if token_type_ids is None:
        token_type_ids = tf.zeros([batch, seq], dtype=tf.int32)
    for name, tensor in (("input_mask", input_mask), ("token_type_ids", token_type_ids)):
        if tf.convert_to_tensor(tensor).shape.ndims != 2:
            raise NorbertError("BertModel: %s must be a tensor [batch, seq_length]" % name)
    return input_ids, input_mask, token_type_ids, batch, seq


def _checked_compute_dtype(compute_dtype) -> tf.DType:
    """``compute_dtype`` as a DType, one of the three the model computes in."""
    compute_dtype = tf.as_dtype(compute_dtype)
    if compute_dtype not in (tf.float32, tf.bfloat16, tf.float16):
        raise NorbertError(
            "BertModel: compute_dtype must be float32, bfloat16 or float16, not %s"
            % compute_dtype.name
        )
    return compute_dtype


def _encoder(config, embedding_output, input_mask, batch, seq, hidden_rate, attention_rate,
             drop):
    """The Transformer layers (scopes ``layer_<l>``) on ``embedding_output`` [B, S, H], keys
    masked by ``input_mask`` [B, S]; returns each layer's output [B, S, H], first to last.
    ``drop(x, rate)`` is the dropout (``dropout``, or a ``DropoutKey``'s)."""
    # Added to the attention scores: 0 where the key is a real token, a large negative
    # number where it is padding. Broadcasts over heads and queries. Float32 whatever the
    # compute dtype: -10000 is coarse in bfloat16.
    key_mask = tf.cast(tf.reshape(input_mask, [batch, 1, 1, seq]), tf.float32)
    score_bias = (1.0 - key_mask) * MASKED_SCORE  # [B, 1, 1, S]

    # The encoder works on matrices [B*S, H]: one matmul per dense layer.
    hidden = tf.reshape(embedding_output, [batch * seq, config.hidden_size])
    layers = []
    for index in range(config.num_hidden_layers):
        with tf.variable_scope("layer_%d" % index):
            hidden = _transformer_layer(
                config, hidden, score_bias, batch, seq, hidden_rate, attention_rate, drop
            )
        layers.append(tf.reshape(hidden, [batch, seq, config.hidden_size]))  # [B, S, H]
    return layers


def _embeddings(config, input_ids, token_type_ids, use_one_hot, dropout_rate, dtype, drop):
    """(word table [V, H], word embeddings [B, S, H], embedding output [B, S, H]), in ``dtype``."""
    batch, seq = shape_list(input_ids)
    width = config.hidden_size
    init = create_initializer(config.initializer_range)

    word_table = tf.get_variable(
        "word_embeddings", [config.vocab_size, width], dtype=dtype, initializer=init
    )
    flat_ids = tf.reshape(input_ids, [-1])  # [B*S]
    if use_one_hot:
        one_hot = tf.one_hot(flat_ids, depth=config.vocab_size, dtype=dtype)
        words = tf.matmul(one_hot, word_table)
    else:
        words = tf.gather(word_table, flat_ids)  # [B*S, H]

    # Few token types: a one-hot matmul is cheap and avoids a gather on TPU.
    type_table = tf.get_variable(
        "token_type_embeddings", [config.type_vocab_size, width], dtype=dtype, initializer=init
    )
    flat_types = tf.reshape(token_type_ids, [-1])  # [B*S]
    one_hot_types = tf.one_hot(flat_types, depth=config.type_vocab_size, dtype=dtype)
    types = tf.matmul(one_hot_types, type_table)

    position_table = tf.get_variable(
        "position_embeddings", [config.max_position_embeddings, width], dtype=dtype,
        initializer=init,
    )
    if not isinstance(seq, int):  # only known when the graph runs
        check = tf.assert_less_equal(
            seq, config.max_position_embeddings,
            message="sequence longer than max_position_embeddings",
        )
        with tf.control_dependencies([check]):
            seq = tf.identity(seq)
    positions = tf.slice(position_table, [0, 0], [seq, -1])  # [S, H]: positions 0 .. S-1

    word_output = tf.reshape(words, [batch, seq, width])  # [B, S, H]
    summed = word_output + tf.reshape(types, [batch, seq, width]) + positions  # [B, S, H]
    output = drop(layer_norm(summed), dropout_rate)
    return word_table, word_output, output


def _attention(config, x, score_bias, batch, seq, dropout_rate, drop):
    """Multi-head self-attention of ``x`` [B*S, H]; returns the heads' context [B*S, H]."""
    heads, size = config.num_attention_heads, config.attention_head_size

    def project(name):
        y = dense(x, config.hidden_size, config.initializer_range, scope=name)  # [B*S, H]
        y = tf.reshape(y, [batch, seq, heads, size])  # [B, S, N, D]
        return tf.transpose(y, [0, 2, 1, 3])  # [B, N, S, D]

    query, key, value = project("query"), project("key"), project("value")
    scores = tf.matmul(query, key, transpose_b=True) * (1.0 / math.sqrt(size))  # [B, N, S, S]
    # The mask bias and the softmax in float32: exp() of low-precision scores loses the small
    # probabilities, and float16 cannot hold the sum of a long row's exponentials.
    probs = tf.nn.softmax(precision.to_float32(scores) + score_bias)  # over the keys (last axis)
    if probs.dtype != value.dtype:
        probs = tf.cast(probs, value.dtype)
    # Dropping attention probabilities drops whole tokens to attend to, as Google does.
    probs = drop(probs, dropout_rate)
    context = tf.matmul(probs, value)  # [B, N, S, D]
    context = tf.transpose(context, [0, 2, 1, 3])  # [B, S, N, D]
    return tf.reshape(context, [batch * seq, config.hidden_size])  # [B*S, H]


def _transformer_layer(config, x, score_bias, batch, seq, hidden_rate, attention_rate, drop):
    """One post-LayerNorm Transformer block on ``x`` [B*S, H]; returns [B*S, H]."""
    with tf.variable_scope("attention"):
        with tf.variable_scope("self"):
            context = _attention(config, x, score_bias, batch, seq, attention_rate, drop)
        with tf.variable_scope("output"):
            attended = dense(context, config.hidden_size, config.initializer_range)
            attended = layer_norm(drop(attended, hidden_rate) + x)  # residual, [B*S, H]
    with tf.variable_scope("intermediate"):
        inner = dense(
            attended,
            config.intermediate_size,
            config.initializer_range,
            get_activation(config.hidden_act),
        )  # [B*S, I]
    with tf.variable_scope("output"):
        out = dense(inner, config.hidden_size, config.initializer_range)  # [B*S, H]
        return layer_norm(drop(out, hidden_rate) + attended)  # residual, [B*S, H]
