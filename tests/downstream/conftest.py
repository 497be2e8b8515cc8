"""Session fixtures of the downstream tests: the tagged corpus (``tagged_text``) and a tiny
checkpoint."""

import pytest

from helpers import tiny_bert_config
from tagged_text import conllu_text, english_sentences, save_tiny_checkpoint


@pytest.fixture(scope="session")
def tagged(tmp_path_factory, uncased_vocab_path):
    """A folder with train.conllu (the first 120 sentences), eval.conllu (the next 40), the
    uncased vocab and a tiny bert config (dropout 0.1, 64 positions)."""
    root = tmp_path_factory.mktemp("downstream")
    sentences = english_sentences()
    (root / "train.conllu").write_text(conllu_text(sentences[:120]), encoding="utf-8")
    (root / "eval.conllu").write_text(conllu_text(sentences[120:160]), encoding="utf-8")
    (root / "bert_config.json").write_text(tiny_bert_config())
    return root, uncased_vocab_path


@pytest.fixture(scope="session")
def tiny_checkpoint(tagged):
    """(folder, prefix) of a checkpoint of ``tagged``'s tiny model, random weights."""
    root, _ = tagged
    folder = root / "ckpt"
    folder.mkdir()
    return folder, save_tiny_checkpoint(root / "bert_config.json", folder / "model.ckpt-7")
