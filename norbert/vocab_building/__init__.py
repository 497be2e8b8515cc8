"""Vocabularies from text: word counts (word_counts), the WordPiece learner (learner) and the
build_vocab tool around them (builder). No TensorFlow."""
