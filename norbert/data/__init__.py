"""Pretraining records from text: documents, sentence pairs (instances), masks (masking), features,
TFRecord files and their sidecar; the reference-exact builder and the sharded one. No TensorFlow
at import time."""
