"""The small BERT the conversion tests convert, and placeholders to run it in TF.

A plain module (not a test file): the tests beside it import it, as pytest puts their folder
on sys.path.
"""

from norbert.model.bert_config import BertConfig

SMALL = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=64, max_position_embeddings=64, type_vocab_size=2)
SEQ, MAX_PREDICTIONS = 64, 10


def small_config(hidden_act="gelu", **changes):
    values = dict(SMALL, hidden_act=hidden_act)
    values.update(changes)
    return BertConfig(**values)


def placeholders(tf, batch):
    return {
        "input_ids": tf.placeholder(tf.int32, [batch, SEQ]),
        "input_mask": tf.placeholder(tf.int32, [batch, SEQ]),
        "segment_ids": tf.placeholder(tf.int32, [batch, SEQ]),
        "masked_lm_positions": tf.placeholder(tf.int32, [batch, MAX_PREDICTIONS]),
        "masked_lm_ids": tf.placeholder(tf.int32, [batch, MAX_PREDICTIONS]),
        "masked_lm_weights": tf.placeholder(tf.float32, [batch, MAX_PREDICTIONS]),
        "next_sentence_labels": tf.placeholder(tf.int32, [batch, 1]),
    }
