"""Training and evaluation input: TFRecord files to batches of pretraining features.

The records' shapes are checked before any graph is built: against the sidecar that the data
builder writes beside each file (``<file>.meta.json``), or, for records from another builder,
against the first record itself. A ``max_seq_length`` or ``max_predictions_per_seq`` that does
not match the data is then a clear error naming the file and flag, not a parse failure deep
inside TensorFlow minutes into a run.

Damaged files are looked for too. TensorFlow reads a file cut short as if it ended there, and
silently trains on less, so each file's end is checked before the run (a cheap look at its last
bytes, not a read of the whole). A record with flipped bytes fails its checksum only when read,
as a ``DataLossError`` without the file's name; ``RecordInput.describe_data_loss`` then finds the
file and the record.

Named groups of files (``--input_file=nb=data/nb-*,en=data/en-*``) are read as one dataset each
and mixed by sampling with each group's share (``norbert.training.mixing``); their sizes come
from the sidecars' counts, or from a walk over the records' headers.
"""

import dataclasses
import os
import random
import re
import struct
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from absl import logging

from norbert import fileio
from norbert.data import sidecar, tfrecord
from norbert.data.features import DYNAMIC, STATIC, parse_spec
from norbert.errors import NorbertError
from norbert.training.dynamic_masking import DynamicMasking, mask_batch
from norbert.training.dynamic_pairing import DynamicPairing, pair_batch
from norbert.training.mixing import Group, parse_groups


# Chunks (--pairing=dynamic) made into pairs together: a random next sentence comes from one of
# the other 255 of its window.
PAIRING_WINDOW = 256


@dataclasses.dataclass(frozen=True)
class InputConfig:
    input_files: List[str]  # TFRecord files (local or gs://), already expanded
    max_seq_length: int
    max_predictions_per_seq: int
    is_training: bool  # repeat, shuffle and read files in parallel; else one ordered pass
    num_cpu_threads: int = 4  # files read in parallel while training
    shuffle_buffer: int = 100  # records; files are shuffled too, so a small buffer suffices
    seed: Optional[int] = None  # for the shuffles; None: a different order each run
    # Records of --masking=dynamic: how their masks are drawn as they are read (None: the
    # records hold their masks).
    masking: Optional[DynamicMasking] = None
    # Records of --pairing=dynamic (chunks): how pairs are made of them as they are read (None:
    # the records hold pairs). Needs ``masking``.
    pairing: Optional[DynamicPairing] = None
    # Training: named groups of input_files, each read as its own stream, drawn from by their
    # shares (mixing.mix); None: input_files read as one set.
    groups: Optional[Tuple[Group, ...]] = None


def record_files(spec: str, flag: str = "--input_file") -> List[str]:
    """The record files named by a comma-separated list of files or globs.

    Sidecars (``.json``) that a glob such as ``data/*`` also matches are left out.
    """
    files = [p for p in fileio.expand_inputs(spec, flag) if not p.endswith(".json")]
    if not files:
        raise NorbertError("%s=%s matches only .json files, no records" % (flag, spec))
    return files


def record_groups(spec: str, flag: str = "--input_file") -> Optional[List[Tuple[str, List[str]]]]:
    """[(name, record files)] of named groups ``name=glob,...``; None for plain globs.

    Raises ``NorbertError`` naming ``flag`` and the group for one that matches no records, and
    for a file in two groups (it would be drawn under both shares).
    """
    named = parse_groups(spec, flag)
    if named is None:
        return None
    out = []
    owner = {}  # type: Dict[str, str]
    for name, pattern in named:
        files = [p for p in fileio.expand_inputs(pattern, "%s group %s" % (flag, name))
                 if not p.endswith(".json")]
        if not files:
            raise NorbertError("%s: group %s (%s) matches only .json files, no records"
                               % (flag, name, pattern))
        for path in files:
            if path in owner:
                raise NorbertError("%s: %s is in groups %s and %s: give each file one group"
                                   % (flag, path, owner[path], name))
            owner[path] = name
        out.append((name, files))
    return out


def count_records(path: str, flag: str = "--input_file") -> int:
    """The records in ``path``, from its framing: each header read, the data skipped."""
    total = fileio.size(path)
    pos = number = 0
    with fileio.open_binary(path) as f:
        while pos < total:
            header = f.read(12)
            end = total + 1  # a header cut short or failing its checksum: damaged
            if len(header) == 12:
                length, length_crc = struct.unpack("<QI", header)
                if length_crc == tfrecord.masked_crc32c(header[:8]):
                    end = pos + 12 + length + 4
            if end > total:
                problem = find_damage(path) or (number + 1, pos, "is damaged")
                raise NorbertError(damage_message(flag, path, problem))
            f.seek(end)
            pos = end
            number += 1
    return number


Sidecars = Mapping[str, Optional[dict]]  # record file -> its sidecar (None: it has none)


def read_sidecars(files: Sequence[str]) -> Dict[str, Optional[dict]]:
    """Each file's sidecar, read once: the checks before a run all take them from here (each
    read is a round trip or two on gs://, and a run may have thousands of shards)."""
    return {path: sidecar.read(path) for path in files}


def sidecar_of(path: str, sidecars: Optional[Sidecars] = None) -> Optional[dict]:
    """``path``'s sidecar from ``sidecars`` (``read_sidecars``), or read if it is not there."""
    if sidecars is not None and path in sidecars:
        return sidecars[path]
    return sidecar.read(path)


def records_in(path: str, flag: str = "--input_file",
               sidecars: Optional[Sidecars] = None) -> int:
    """The records in ``path``: its own sidecar's count, else counted (``count_records``).

    A shard set's shared sidecar counts the whole set, not the file: it is not used.
    """
    meta = sidecar_of(path, sidecars)
    if meta is not None and meta.get("file") == os.path.basename(path):
        count = meta.get("instances_in_file")
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            return count
    return count_records(path, flag)


def _first_record(record_file: str, flag: str) -> Optional[Dict[str, list]]:
    """The features of ``record_file``'s first record (None for an empty file)."""
    with fileio.open_binary(record_file) as f:
        header = f.read(12)
        if not header:
            return None  # an empty file holds no shapes to check
        data = b""
        if len(header) == 12:
            length = int.from_bytes(header[:8], "little")
            if int.from_bytes(header[8:], "little") == tfrecord.masked_crc32c(header[:8]):
                data = f.read(length)
        crc = f.read(4)
    if len(crc) < 4 or int.from_bytes(crc, "little") != tfrecord.masked_crc32c(data):
        problem = find_damage(record_file)
        if problem is not None:
            raise NorbertError(damage_message(flag, record_file, problem))
    try:
        features = tfrecord.decode_example(data)
    except (ValueError, IndexError, UnicodeDecodeError):
        raise NorbertError("%s: %s holds no pretraining records (its first record is not a "
                           "tf.train.Example): give the files create_pretraining_data wrote"
                           % (flag, record_file)) from None
    return features


# A file whose last bytes hold no whole record is read through to find where it breaks; records
# longer than this are read through too (and pass, if whole).
TAIL_BYTES = 1 << 16


def find_damage(path: str, offset: Optional[int] = None) -> Optional[Tuple[int, int, str]]:
    """(record number from 1, its byte offset, what is wrong) of the first damaged record of
    ``path``, or None when there is none.

    Reads the framing without TensorFlow: each header's length checksum, and each record's
    data checksum. With ``offset`` (a position TensorFlow named: "corrupted record at N", the
    start of the record or of its data), only the record there has its data read, and the walk
    stops there: the headers before it are enough to count the records.
    """
    total = fileio.size(path)
    pos = number = 0
    with fileio.open_binary(path) as f:
        while pos < total:
            if offset is not None and pos > offset:
                return None
            number += 1
            header = f.read(12)
            if len(header) < 12:
                return number, pos, "is cut short (the file is truncated)"
            length, length_crc = struct.unpack("<QI", header)
            if length_crc != tfrecord.masked_crc32c(header[:8]):
                return number, pos, "is corrupt (its length fails its checksum)"
            end = pos + 12 + length + 4
            if end > total:
                return number, pos, "is cut short (the file is truncated)"
            if offset is None or offset in (pos, pos + 12):
                data = f.read(length)
                (data_crc,) = struct.unpack("<I", f.read(4))
                if data_crc != tfrecord.masked_crc32c(data):
                    return number, pos, "is corrupt (its data fail their checksum)"
            else:
                f.seek(end)
            pos = end
    return None


def _ends_with_a_record(tail: bytes) -> bool:
    """Whether ``tail``, a file's last bytes, ends with one whole TFRecord frame.

    A frame is ``length, crc(length), data, crc(data)``: some start ``p`` in ``tail`` must hold
    a length that reaches exactly to the end, with both checksums right.
    """
    n = len(tail)
    if n < 16:
        return False
    raw = np.frombuffer(tail, np.uint8)
    m = n - 15  # starts p with p + 16 <= n
    lengths = np.zeros(m, np.uint64)
    for k in range(8):  # the little-endian uint64 at every start at once
        lengths |= raw[k:k + m].astype(np.uint64) << np.uint64(8 * k)
    reach = (n - 16 - np.arange(m)).astype(np.uint64)
    for p in np.nonzero(lengths == reach)[0].tolist():
        (length_crc,) = struct.unpack("<I", tail[p + 8:p + 12])
        if length_crc != tfrecord.masked_crc32c(tail[p:p + 8]):
            continue
        (data_crc,) = struct.unpack("<I", tail[n - 4:])
        if data_crc == tfrecord.masked_crc32c(tail[p + 12:n - 4]):
            return True
    return False


def check_framing(path: str, flag: str = "--input_file",
                  sidecars: Optional[Sidecars] = None) -> None:
    """Raises ``NorbertError`` when ``path`` is cut short (or damaged where that shows).

    The size against the sidecar's ``bytes_in_file`` when it has one; else the last
    ``TAIL_BYTES`` must end in a whole record (a file cut at a record boundary passes: only a
    count could tell). A short file is read through, checksums and all.
    """
    size = fileio.size(path)
    meta = sidecar_of(path, sidecars)
    if meta is not None and meta.get("file") == os.path.basename(path):
        expected = meta.get("bytes_in_file")
        if isinstance(expected, int) and expected != size:
            raise NorbertError(
                "%s: %s has %d bytes but its sidecar says %d: it is truncated or changed since "
                "it was built; copy or rebuild it" % (flag, path, size, expected))
    if size == 0:
        return
    if size > TAIL_BYTES:
        with fileio.open_binary(path) as f:
            f.seek(size - TAIL_BYTES)
            if _ends_with_a_record(f.read(TAIL_BYTES)):
                return
    problem = find_damage(path)
    if problem is not None:
        raise NorbertError(damage_message(flag, path, problem))


def describe_damage(path: str, problem: Tuple[int, int, str]) -> str:
    """``"<path> is damaged: record N (at byte B) is ..."`` for ``find_damage``'s answer."""
    number, pos, what = problem
    if number == 1 and "length" in what:
        return "%s is not a TFRecord file (its first record's length fails its checksum)" % path
    return "%s is damaged: record %d (at byte %d) %s" % (path, number, pos, what)


def damage_message(flag: str, path: str, problem: Tuple[int, int, str]) -> str:
    described = describe_damage(path, problem)
    if "is not a TFRecord file" in described:  # text, most likely: the step before was skipped
        return "%s: %s: did you mean to run create_pretraining_data.py first?" % (flag, described)
    return "%s: %s; copy or rebuild the file" % (flag, described)


def check_data(config: InputConfig, flag: str = "--input_file",
               model_vocab: Optional[Tuple[int, str]] = None,
               sidecars: Optional[Sidecars] = None) -> None:
    """Raises ``NorbertError`` when the records' lengths differ from the flags, a file is cut
    short, or (``model_vocab``: the model's vocab_size and the file that says it) the records
    hold ids the model's embedding table does not have."""
    want = {"max_seq_length": config.max_seq_length,
            "max_predictions_per_seq": config.max_predictions_per_seq}
    for path in config.input_files:
        check_framing(path, flag, sidecars)
        meta = sidecar_of(path, sidecars)
        if meta is not None:
            settings = meta.get("settings", meta)
            found = {k: settings.get(k) for k in want}
            if sidecar.masking_of(meta) == DYNAMIC:
                found["max_predictions_per_seq"] = None  # chosen when the masks are drawn
            where = "its sidecar says"
            vocab = settings.get("vocab_size")
            vocab_problem = "was built with a vocab of %d tokens" % (vocab or 0)
        else:
            first = _first_record(path, flag)
            if first is None:
                continue
            found = {"max_seq_length": len(first.get("input_ids", [])) or None,
                     "max_predictions_per_seq": len(first.get("masked_lm_positions", []))
                     or None}
            where = "its first record has"
            ids = list(first.get("input_ids", [])) + list(first.get("masked_lm_ids", []))
            vocab = max(ids) + 1 if ids else None
            vocab_problem = "holds token id %d" % (max(ids) if ids else 0)
        for flag, value in want.items():
            if found[flag] is not None and found[flag] != value:
                raise NorbertError(
                    "--%s=%d does not match the data: %s %s %s=%d; pass --%s=%d or rebuild "
                    "the data" % (flag, value, path, where, flag, found[flag], flag, found[flag])
                )
        if model_vocab is not None and vocab is not None and vocab > model_vocab[0]:
            raise NorbertError(
                "%s %s, but the model's vocab_size is %d (%s): build the records with the "
                "model's vocab.txt, or give the bert_config.json that goes with the records' "
                "vocab" % (path, vocab_problem, model_vocab[0], model_vocab[1]))


def dynamic_masking_of(files: List[str], max_predictions_per_seq: int,
                       flag: str = "--input_file",
                       sidecars: Optional[Sidecars] = None) -> Optional[DynamicMasking]:
    """How the masks of ``files`` are drawn as they are read, from their sidecars (the build's
    masking settings, the vocab's size and [MASK] id): None for records that hold their masks.

    Raises ``NorbertError`` for a mix of both kinds, or of dynamic builds that mask
    differently, and for dynamic records without their sidecar.
    """
    def key_of(meta):
        if sidecar.masking_of(meta) == STATIC:
            return None
        settings = meta["settings"]
        return tuple(settings.get(k) for k in ("masked_lm_prob", "do_whole_word_mask",
                                               "whole_word_mask_per_word", "vocab_size",
                                               "mask_id"))

    key = _one_kind(files, flag, sidecars, key_of, "maskable",
                    ("masks drawn at training time", "masks in the records", "masking"))
    if key is None:
        return None
    prob, whole_word, per_word, vocab_size, mask_id = key
    return DynamicMasking(max_predictions_per_seq=max_predictions_per_seq,
                          vocab_size=vocab_size, mask_id=mask_id, masked_lm_prob=prob,
                          whole_word=whole_word, per_word=per_word)


def dynamic_pairing_of(files: List[str], flag: str = "--input_file",
                       sidecars: Optional[Sidecars] = None) -> Optional[DynamicPairing]:
    """How ``files``' chunks become pairs as they are read (``--pairing=dynamic``: the vocab's
    [CLS] and [SEP] ids, from the sidecars): None for records that hold pairs.

    Raises ``NorbertError`` for a mix of chunks and pairs, and for chunks without a sidecar.
    """
    def key_of(meta):
        if sidecar.pairing_of(meta) == STATIC:
            return None
        return tuple(meta["settings"].get(k) for k in ("cls_id", "sep_id"))

    key = _one_kind(files, flag, sidecars, key_of, "sentence_starts",
                    ("chunks paired at training time", "sentence pairs", "pairing"))
    return None if key is None else DynamicPairing(*key)


def _one_kind(files, flag, sidecars, key_of, marker, words):
    """The one key (``key_of(sidecar)``; None: the static kind) that all ``files`` share.

    A file without a sidecar is of the static kind unless its first record holds the feature
    ``marker`` (then: an error). ``words``: (the dynamic kind, the static kind, the setting),
    for the errors.
    """
    dynamic, static, setting = words
    found = {}  # key -> a file that has it
    for path in files:
        meta = sidecar_of(path, sidecars)
        if meta is None:
            first = _first_record(path, flag)
            if first is not None and marker in first:
                raise NorbertError(
                    "%s: %s holds records for %s but has no sidecar (%s): copy it beside the "
                    "file" % (flag, path, dynamic, sidecar.path_for(path)))
            found.setdefault(None, path)
            continue
        found.setdefault(key_of(meta), path)
    if len(found) > 1:
        (a, path_a), (b, path_b) = list(found.items())[:2]
        kind = lambda key: dynamic if key is not None else static
        raise NorbertError("%s mixes records built differently: %s (%s) and %s (%s); give "
                           "records of one build's %s" % (flag, path_a, kind(a), path_b,
                                                         kind(b), setting))
    return next(iter(found), None)


class RecordInput:
    """``input_fn(params)`` for TPUEstimator and norbert's loop, with a way to name damage.

    TensorFlow reports a record that fails its checksum as ``DataLossError`` "corrupted record
    at N", without the file: ``describe_data_loss`` finds it in the input files.
    """

    def __init__(self, config: InputConfig, input_fn: Callable[[dict], object]):
        self.config = config
        self._input_fn = input_fn

    def __call__(self, params):
        return self._input_fn(params)

    def describe_data_loss(self, message: str) -> Optional[str]:
        """``"<file> is damaged: record N (at byte B) is corrupt (...)"``, or None if the files
        read now show no damage."""
        found = re.search(r"(?:corrupted|truncated) record at (\d+)", message or "")
        offsets = [int(found.group(1)), None] if found else [None]
        for offset in offsets:  # first the cheap look where TensorFlow pointed, then all
            for path in self.config.input_files:
                try:
                    problem = find_damage(path, offset)
                except NorbertError:
                    continue
                if problem is not None:
                    return describe_damage(path, problem)
        return None


def make_input_fn(config: InputConfig) -> RecordInput:
    """``input_fn(params)`` for TPUEstimator and norbert's loop: ``params["batch_size"]``."""
    import tensorflow.compat.v1 as tf

    masking, pairing = config.masking, config.pairing
    spec = parse_spec(config.max_seq_length, config.max_predictions_per_seq,
                      STATIC if masking is None else DYNAMIC,
                      STATIC if pairing is None else DYNAMIC)
    # Dynamic masks: a batch's seed is (the run's seed, the batch's number in this pipeline's
    # stream, interleaved over pipelines), so a seed fixes every mask and a record read again
    # (next epoch, another batch) gets new ones. Without a seed, training draws one per run;
    # evaluation always uses the same masks.
    mask_seed = config.seed
    if mask_seed is None:
        mask_seed = random.SystemRandom().getrandbits(31) if config.is_training else 0

    def decode(record):
        example = tf.io.parse_single_example(record, spec)
        # TPUs have no int64 ops; every model op takes int32 just as well.
        return {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in example.items()}

    def stream(files, context, pipelines, what=""):
        """Records of ``files`` for ever, shuffled: this pipeline's share of them."""
        # Under multi-worker training, each worker reads its own share (tf.distribute does not
        # shard a graph-mode input for it): whole files where there are enough, else records.
        by_record = 1 < pipelines and len(files) < pipelines
        if by_record and context.input_pipeline_id == 0:
            logging.warning("%s%d record files for %d workers: each reads every file and keeps "
                            "its share of the records; more files than workers read faster",
                            what, len(files), pipelines)
        read = tf.data.TFRecordDataset
        if by_record:
            # Within each file, not over the repeated stream: a file of an odd number of
            # records would otherwise give each worker the other's records next epoch.
            read = lambda path: tf.data.TFRecordDataset(path).shard(
                pipelines, context.input_pipeline_id)
        d = tf.data.Dataset.from_tensor_slices(tf.constant(files))
        if 1 < pipelines and not by_record:
            d = d.shard(pipelines, context.input_pipeline_id)  # before any shuffle
        d = d.repeat().shuffle(buffer_size=len(files), seed=config.seed)
        d = d.interleave(
            read,
            cycle_length=min(config.num_cpu_threads, len(files)),
            num_parallel_calls=min(config.num_cpu_threads, len(files)),
        )
        return d.shuffle(buffer_size=config.shuffle_buffer, seed=config.seed)

    def input_fn(params):
        batch_size = params["batch_size"]  # per replica under a strategy: the global / replicas
        context = params.get("input_context")
        pipelines = context.num_input_pipelines if context is not None else 1
        pipeline_id = context.input_pipeline_id if context is not None else 0
        n_streams = len(config.groups) if config.is_training and config.groups else 1

        def records(d, stream_id=0):
            """Parsed records; chunks (--pairing=dynamic) made into pairs, a window at a time:
            a random next sentence comes from the same window, so from the same stream (one
            group: one language or source, as the builder draws it from its own input) and
            never depends on the batch size."""
            d = d.map(decode, num_parallel_calls=config.num_cpu_threads)
            if pairing is None:
                return d

            @tf.autograph.experimental.do_not_convert
            def make_pairs(number, window):
                # A seed of its own per window: (the run's, its number over all pipelines and
                # streams), negative so that no batch's mask seed equals it.
                seed = tf.stack([tf.constant(mask_seed, tf.int64),
                                 -1 - ((number * pipelines + pipeline_id) * n_streams
                                       + stream_id)])  # [2]
                return pair_batch(window, pairing, seed)

            d = d.batch(PAIRING_WINDOW).enumerate()
            return d.map(make_pairs, num_parallel_calls=config.num_cpu_threads).unbatch()

        if config.is_training and config.groups:
            # One stream per group, each sharded and shuffled as a plain set is; a record's
            # group drawn with the groups' shares. Seeded per pipeline: the same draws for the
            # same seed, and workers' batches not made of groups in the same order.
            streams = [records(stream(list(g.files), context, pipelines, "group %s: " % g.name),
                               k) for k, g in enumerate(config.groups)]
            seed = config.seed
            if seed is not None and context is not None:
                seed = seed * pipelines + context.input_pipeline_id
            d = _sample(tf, streams, [g.share for g in config.groups], seed)
        elif config.is_training:
            d = records(stream(list(config.input_files), context, pipelines))
        else:
            # One ordered pass: the same batches, in the same order, at every evaluation.
            d = records(tf.data.TFRecordDataset(list(config.input_files)))
        # TPUs need fixed shapes; the loop's step count assumes full batches too.
        d = d.batch(batch_size, drop_remainder=True)
        if masking is not None:
            # Plain TF ops, traced as written: autograph has nothing to convert, and trying
            # printed a "could not transform" warning at every run.
            @tf.autograph.experimental.do_not_convert
            def draw_masks(number, batch):
                seed = tf.stack([tf.constant(mask_seed, tf.int64),
                                 number * pipelines + pipeline_id])  # [2]
                return mask_batch(batch, masking, seed)

            d = d.enumerate().map(draw_masks, num_parallel_calls=config.num_cpu_threads)
        return d.prefetch(2)

    return RecordInput(config, input_fn)


def _sample(tf, datasets, weights, seed):
    """``datasets`` mixed: each element drawn from dataset i with probability ``weights[i]``."""
    if len(datasets) == 1:
        return datasets[0]
    # Dataset.sample_from_datasets (TF 2.7 on) is what tf.data.experimental's (TF 1.15, and
    # deprecated since) wraps: the same draws for the same seed, without the notice.
    sample = getattr(tf.data.Dataset, "sample_from_datasets", None)
    if sample is None:
        sample = tf.data.experimental.sample_from_datasets
    return sample(datasets, weights=weights, seed=seed)
