"""The builders' record loop: documents in, serialised records out, as one build's settings
ask (static pairs with masks, unmasked pairs for ``--masking=dynamic``, chunks for
``--pairing=dynamic``, packed sequences for ``--objective=mlm``).

Shared by the reference-exact builder (``norbert.data.builder``), the sharded one
(``norbert.data.sharded``) and, through it, the Beam pipeline: one loop, whichever builder
drives it.
"""

from typing import Iterator, List, Sequence, Tuple

from norbert.data.chunks import ChunkEncoder, create_chunks
from norbert.data.config import DataConfig, DataSummary
from norbert.data.draws import Draws
from norbert.data.features import MLM, ExampleEncoder, UnmaskedEncoder
from norbert.data.instances import Document, create_instances
from norbert.data.masking import Masker, leave_unmasked
from norbert.data.packing import packed_instances
from norbert.progress import Progress


def record_writers(config: DataConfig, vocab_words: List[str], exact: bool = True):
    """(``mask_pair(tokens, len_a, draws)``, the record encoder) of a build: the masker and
    Google's records (for ``--objective=mlm`` ``mask(tokens, candidates, draws)``), with
    ``--masking=dynamic`` no masks and the unmasked records, with ``--pairing=dynamic`` no
    masker (no pairs) and the chunk records."""
    s, p, n = config.max_seq_length, config.max_predictions_per_seq, len(vocab_words)
    continuation = [w.startswith("##") for w in vocab_words]  # id -> a "##" piece
    if config.pairs_dynamic:
        return None, ChunkEncoder(s, continuation)
    if config.dynamic:
        return leave_unmasked, UnmaskedEncoder(s, p, n, continuation)
    masker = Masker.for_vocab(config.masking_config, vocab_words, exact=exact)
    if config.objective == MLM:  # packed records: masks over explicit candidates
        return masker.mask, ExampleEncoder(s, p, n)
    return masker.mask_pair, ExampleEncoder(s, p, n)


Record = Tuple[bytes, int, int, bool]  # (serialised example, tokens, masked, random next)


def encoded_records(documents: Sequence[Document], config: DataConfig, mask_pair, encoder,
                    draws: Draws, cls_id: int, sep_id: int) -> Iterator[Record]:
    """The records of ``documents`` (shuffled by the caller), ``config.dupe_factor`` passes,
    with ``record_writers``' pair: sentence pairs (masked or not) or, for --pairing=dynamic,
    chunks (``norbert.data.chunks``; counted as no random next: that is drawn when read), or
    for --objective=mlm packed sequences (``norbert.data.packing``; no random next)."""
    if config.pairs_dynamic:
        for chunk in create_chunks(documents, config.instance_config, draws,
                                   config.dupe_factor):
            yield encoder.encode(chunk), encoder.tokens(chunk), 0, False
        return
    if config.objective == MLM:
        for tokens, candidates, positions, labels in packed_instances(
            documents, config.max_seq_length, config.cross_documents, mask_pair, draws,
            cls_id, sep_id, dupe_factor=config.dupe_factor,
            whole_sentences=config.whole_sentences,
        ):
            yield (encoder.encode_packed(tokens, candidates, positions, labels), len(tokens),
                   len(positions), False)
        return
    encode = encoder.encode
    for tokens, len_a, positions, labels, is_random_next in create_instances(
        documents, config.instance_config, mask_pair, draws, cls_id, sep_id,
        dupe_factor=config.dupe_factor,
    ):
        yield (encode(tokens, len_a, positions, labels, is_random_next), len(tokens),
               len(positions), is_random_next)


def collect_records(config: DataConfig, tokenizer, vocab_words: List[str], documents,
                    draws: Draws, summary: DataSummary) -> List[bytes]:
    """The serialised records of ``dupe_factor`` passes over the shuffled ``documents``, in the
    order made (the reference-exact builder's, and the held-out records'); their token, masked
    and random-next counts go into ``summary``."""
    mask_pair, encoder = record_writers(config, vocab_words)
    records: List[bytes] = []
    append = records.append
    n_tokens = n_masked = n_random = 0
    with Progress("instances", "instances", enabled=config.progress) as bar:
        for record, tokens, masked, is_random_next in encoded_records(
            documents, config, mask_pair, encoder, draws,
            cls_id=tokenizer.vocab["[CLS]"], sep_id=tokenizer.vocab["[SEP]"],
        ):
            append(record)
            n_tokens += tokens
            n_masked += masked
            n_random += is_random_next
            if not len(records) & 1023:  # a call per 1024 records: nothing in the loop's time
                bar.update(1024)
        bar.update(len(records) & 1023)
    summary.instance_tokens, summary.masked_tokens = n_tokens, n_masked
    summary.random_next = n_random
    return records
