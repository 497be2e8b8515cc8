"""BERT as TensorFlow graph code: bert_config.json, the encoder (modeling), the pretraining heads,
arithmetic precision, and checkpoints (finding, reading, writing, and restoring them with
Google's variable names)."""
