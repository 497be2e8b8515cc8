"""Tokenizer throughput: norbert vs Google's FullTokenizer vs Hugging Face tokenizers.

Every line of ../shared/data/*.txt (English, Norwegian, Chinese, Russian) with the real 30k
uncased vocab, text to ids, in one process. norbert "cold" is a fresh tokenizer's first pass
(its word cache empty); "warm" is a second pass over the same text.
"""

import sys

from common import best_time, corpus_files, table, uncased_vocab


def main():
    from absl import flags
    from bert import tokenization
    from tokenizers import BertWordPieceTokenizer

    from norbert import FullTokenizer

    flags.FLAGS.mark_as_parsed()
    vocab = uncased_vocab()
    lines = []
    for path in corpus_files():
        with open(path, encoding="utf-8") as f:
            lines.extend(f.read().split("\n"))
    megabytes = sum(len(line.encode("utf-8")) + 1 for line in lines) / 1e6

    ref = tokenization.FullTokenizer(vocab, do_lower_case=True)
    hf = BertWordPieceTokenizer(vocab, lowercase=True)

    def reference():
        return [ref.convert_tokens_to_ids(ref.tokenize(line)) for line in lines]

    def norbert_cold():
        tok = FullTokenizer(vocab, do_lower_case=True)
        return [tok.encode(line) for line in lines]

    warm_tok = FullTokenizer(vocab, do_lower_case=True)
    [warm_tok.encode(line) for line in lines]

    def norbert_warm():
        return [warm_tok.encode(line) for line in lines]

    def hf_per_line():
        return [hf.encode(line, add_special_tokens=False).ids for line in lines]

    def hf_batch():
        return [e.ids for e in hf.encode_batch(lines, add_special_tokens=False)]

    runs = [
        ("Google's FullTokenizer (bert-tensorflow 1.0.4)", reference, 2),
        ("norbert FullTokenizer.encode, cold cache", norbert_cold, 3),
        ("norbert FullTokenizer.encode, warm cache", norbert_warm, 3),
        ("HF tokenizers, encode per line", hf_per_line, 3),
        ("HF tokenizers, encode_batch (all threads)", hf_batch, 3),
    ]
    results = []
    expected = None
    for name, fn, repeat in runs:
        seconds, ids = best_time(fn, repeat)
        if expected is None:
            expected = ids
        elif ids != expected:
            raise SystemExit("%s gave different ids from the reference" % name)
        results.append((name, seconds))
    ref_seconds = results[0][1]
    cold_seconds = results[1][1]
    rows = [
        (name, "%.2f" % s, "%.2f" % (megabytes / s), "%.1fx" % (ref_seconds / s),
         "%.2fx" % (cold_seconds / s))
        for name, s in results
    ]
    print("## Tokenizer: text to ids\n")
    print(
        "%d lines, %.2f MB of English, Norwegian, Chinese and Russian text "
        "(`../shared/data/*.txt`), uncased 30,522-token vocab, one process, best of 2-3 runs; "
        "every tool gave identical ids. Command: `python benchmarks/run_all.py tokenizer`.\n"
        % (len(lines), megabytes)
    )
    print(table(["tokenizer", "seconds", "MB/s", "vs reference", "vs norbert cold"], rows))


if __name__ == "__main__":
    sys.exit(main())
