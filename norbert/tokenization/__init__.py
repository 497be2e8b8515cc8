"""Text to WordPiece ids: normalisation (text), the WordPiece rule (wordpiece), vocab files and
their special tokens (vocab), and the tokenizer that joins them. No TensorFlow."""
