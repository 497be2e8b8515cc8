"""BERT as TensorFlow graph code: bert_config.json, the encoder (modeling), the pretraining heads,
arithmetic precision, and checkpoint restore with Google's variable names."""
