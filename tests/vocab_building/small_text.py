"""A few lines of mixed text (English, Norwegian, Chinese, Russian) and helpers around it,
shared by the vocab-building tests."""

import collections
import gzip

from norbert.tokenization import text as textlib

TEXT = """The quick brown fox jumps over the lazy dog.
The dog sleeps; the fox runs, and the fox hides in the forest.

Foxes and dogs are not the same: a fox is wild, a dog is tame.
Bjørnen sover i skogen, og reven løper over isen. Ærlig talt!
Jumping foxes jumped over sleeping dogs while the quick brown foxes watched.
中文字 and Русский текст appear once or twice, текст twice.
"""


def write(tmp_path, name, text):
    """``text`` as ``tmp_path``/``name``, gzip-compressed when the name ends in .gz."""
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def counts_of(text, do_lower_case=True):
    """The tokenizer's words in ``text``, counted."""
    return collections.Counter(textlib.basic_tokenize(text, do_lower_case))
