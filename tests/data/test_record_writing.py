"""The builders' record loop: which masker and encoder a build's settings pick, and the records
they give, counted as the summary counts them."""

import random

from norbert.data import tfrecord
from norbert.data.chunks import ChunkEncoder
from norbert.data.config import DataConfig
from norbert.data.draws import Draws
from norbert.data.features import ExampleEncoder, UnmaskedEncoder
from norbert.data.masking import leave_unmasked
from norbert.data.record_writing import encoded_records, record_writers

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "##d", "##e"]
CLS, SEP = 2, 3
DOCUMENTS = [[[5, 6, 8], [7, 9], [5, 5, 6]], [[6, 7], [8, 5, 9, 7]], [[7, 7, 7], [5]]]


def _config(**changes):
    return DataConfig(input_file="in.txt", output_file="out.tfrecord", vocab_file="vocab.txt",
                      max_seq_length=16, max_predictions_per_seq=3, dupe_factor=2, **changes)


def _records(config, seed=7):
    mask_pair, encoder = record_writers(config, VOCAB)
    return list(encoded_records(DOCUMENTS, config, mask_pair, encoder,
                                Draws(random.Random(seed)), CLS, SEP))


def test_each_kind_of_build_gets_its_masker_and_encoder():
    mask_pair, encoder = record_writers(_config(), VOCAB)
    assert isinstance(encoder, ExampleEncoder) and mask_pair.__name__ == "mask_pair"
    assert record_writers(_config(masking="dynamic"), VOCAB)[0] is leave_unmasked
    assert isinstance(record_writers(_config(masking="dynamic"), VOCAB)[1], UnmaskedEncoder)
    mask_pair, encoder = record_writers(_config(pairing="dynamic"), VOCAB)
    assert mask_pair is None and isinstance(encoder, ChunkEncoder)


def test_static_records_carry_their_masks_and_counts():
    records = _records(_config())
    assert records and records == _records(_config())  # same seed, same records
    for data, tokens, masked, _ in records:
        example = tfrecord.decode_example(data)
        assert sum(example["input_mask"]) == tokens
        assert sum(1 for w in example["masked_lm_weights"] if w) == masked >= 1
    assert _records(_config(), seed=8) != records


def test_dynamic_records_leave_the_masks_and_chunks_the_pairs():
    for data, tokens, masked, _ in _records(_config(masking="dynamic")):
        assert masked == 0 and "masked_lm_ids" not in tfrecord.decode_example(data)
    chunks = _records(_config(pairing="dynamic"))
    assert chunks and all(masked == 0 and not random_next
                          for _, _, masked, random_next in chunks)
