"""Vocabulary quality and build time: norbert's WordPiece learner vs Hugging Face tokenizers.

../shared/data/*.txt (English, Norwegian, Chinese, Russian), split by document (documents are
separated by blank lines): every 10th document is held out, the rest is training text. Each
vocab is learned from the training text, then the held-out text is tokenized with it by
WordPiece (greedy longest match, as FullTokenizer does). Fewer tokens per word is better, as long
as no more words become [UNK].
"""

import collections
import os
import tempfile
import time

from common import corpus_files, table

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def split_corpus(folder):
    train, held = [], []
    for path in corpus_files():
        with open(path, encoding="utf-8") as f:
            for i, doc in enumerate(f.read().split("\n\n")):
                (held if i % 10 == 9 else train).append(doc)
    train_path = os.path.join(folder, "train.txt")
    with open(train_path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(train))
    return train_path, "\n".join(held)


def main():
    from tokenizers import BertWordPieceTokenizer

    from norbert import build_vocab, load_vocab
    from norbert.tokenization.text import basic_tokenize
    from norbert.vocab_building.learner import corpus_tokens

    rows = []
    worst = 0.0
    with tempfile.TemporaryDirectory() as folder:
        train_path, held_text = split_corpus(folder)
        megabytes = os.path.getsize(train_path) / 1e6
        for size in (8000, 16000):
            for lower in (True, False):
                held = collections.Counter(basic_tokenize(held_text, lower))
                words = sum(held.values())

                start = time.perf_counter()
                hf = BertWordPieceTokenizer(lowercase=lower, strip_accents=lower)
                hf.train([train_path], vocab_size=size, special_tokens=SPECIALS,
                         show_progress=False)
                hf_seconds = time.perf_counter() - start
                hf_tokens, hf_unk = corpus_tokens(held, hf.get_vocab())

                for score in ("frequency", "likelihood"):
                    out = os.path.join(folder, "vocab.txt")
                    start = time.perf_counter()
                    build_vocab(input_file=train_path, output_file=out, vocab_size=size,
                                do_lower_case=lower, num_unused=0, merge_score=score)
                    seconds = time.perf_counter() - start
                    tokens, unk = corpus_tokens(held, load_vocab(out))
                    ratio = tokens / hf_tokens
                    if score == "frequency":
                        worst = max(worst, ratio)
                    rows.append((
                        size, "uncased" if lower else "cased", score,
                        "%.4f" % (tokens / words), "%.4f" % (hf_tokens / words),
                        "%+.2f%%" % (100 * (ratio - 1)), "%d / %d" % (unk, hf_unk),
                        "%.1f / %.1f" % (seconds, hf_seconds), "%.1fx" % (seconds / hf_seconds),
                    ))
    print("## Vocabulary builder\n")
    print(
        "WordPiece vocabs learned from %.2f MB of English, Norwegian, Chinese and Russian text "
        "(`../shared/data/*.txt`, every 10th document held out), %d held-out words tokenized "
        "with each. norbert with its defaults (`character_coverage=0.9999`, `min_frequency=2`) "
        "and no `[unusedN]` slots; Hugging Face `tokenizers` `BertWordPieceTokenizer.train` with "
        "its defaults (`limit_alphabet=1000`, `min_frequency=2`), same vocab size and specials. "
        "Tokens per word: lower is better; the ratio column is norbert against HF. Build time "
        "is end to end from the file; norbert counts words in one process, HF uses every core. "
        "Command: `python benchmarks/run_all.py vocab_builder`.\n" % (megabytes, words)
    )
    print(table(
        ["vocab size", "casing", "norbert merge score", "norbert tokens/word",
         "HF tokens/word", "norbert vs HF", "[UNK] words norbert / HF",
         "build s norbert / HF", "time ratio"],
        rows,
    ))
    print("\nWorst tokens-per-word ratio with the default (frequency) score: %+.2f%%."
          % (100 * (worst - 1)))


if __name__ == "__main__":
    main()
