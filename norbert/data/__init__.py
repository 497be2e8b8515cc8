"""Pretraining records from text: documents, sentence pairs (instances), masks (masking), features,
TFRecord files (one reader and writer of the framing) and their sidecar; the builders' record
loop (record_writing), the reference-exact builder and the sharded one; the sequence and
masking defaults (defaults). No TensorFlow at import time."""
