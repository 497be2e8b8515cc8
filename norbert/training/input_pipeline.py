"""Training and evaluation input: TFRecord files to batches of pretraining features.

A pipeline of named steps, each a function from dataset to dataset::

    files ─► _file_records ─► _decoded ─► _paired ─┬─► batches ─► _masked ─► cut ─► prefetch
            (this pipeline's  (parsed,   (chunks    │   (grouped  (--masking  (to the
             share, shuffled,  int32)     to pairs, │    by length dynamic)   batch's
             for ever)                    dynamic)  │    with buckets)        bucket, or
                                                    │                         tagged with it)
                                                    └─ _mixed: named groups, one stream
                                                       each, drawn by their shares

Evaluation reads the files once, in order, through the same decoding; with buckets its batches
are only cut, never regrouped (``norbert.training.length_buckets``). The records are checked
before a run in ``record_checks``; ``RecordInput.describe_data_loss`` names a damaged record
that TensorFlow meets while reading (its ``DataLossError`` does not name the file).
"""

import dataclasses
import functools
import random
import re
from typing import Callable, List, Optional, Tuple

from absl import logging

from norbert.data.features import DYNAMIC, STATIC, parse_spec
from norbert.errors import NorbertError
from norbert.training.dynamic_masking import DynamicMasking, mask_batch
from norbert.training.dynamic_pairing import DynamicPairing, pair_batch
from norbert.training import length_buckets
from norbert.training.mixing import Group
from norbert.training.record_checks import describe_damage, find_damage


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
    # Length buckets' boundaries (length_buckets.parse; () or one: every batch full length):
    # training groups examples by length and cuts each batch to its bucket; evaluation cuts.
    length_buckets: Tuple[int, ...] = ()
    # TPUEstimator: with buckets, batches keep --max_seq_length and carry their bucket's number
    # instead of being cut (length_buckets.tagged), grouped in runs of length_buckets.TPU_RUN.
    bucket_tags: bool = False


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
    spec = parse_spec(config.max_seq_length, config.max_predictions_per_seq,
                      STATIC if config.masking is None else DYNAMIC,
                      STATIC if config.pairing is None else DYNAMIC)
    return RecordInput(config, functools.partial(_input_fn, config, spec, _mask_seed(config)))


def _mask_seed(config: InputConfig) -> int:
    """The run's seed of dynamic masks and pairs, drawn once per input_fn.

    A batch's seed is (this, the batch's number in this pipeline's stream, interleaved over
    pipelines), so a seed fixes every mask and a record read again (next epoch, another batch)
    gets new ones. Without a seed, training draws one per run; evaluation always uses the same
    masks.
    """
    if config.seed is not None:
        return config.seed
    return random.SystemRandom().getrandbits(31) if config.is_training else 0


@dataclasses.dataclass(frozen=True)
class _Place:
    """Where one input pipeline stands among all: what its share and its seeds are made of."""

    pipelines: int  # input pipelines in all (one per worker, or per TPU input host)
    pipeline_id: int  # this pipeline's number among them
    streams: int  # streams mixed (named groups, while training), else 1
    mask_seed: int  # the run's seed of masks and pairs (_mask_seed)


def _input_fn(config: InputConfig, spec: dict, mask_seed: int, params: dict):
    """The batches of one input pipeline: ``params["batch_size"]`` is per replica under a
    strategy (the global batch / replicas), ``params["input_context"]`` its place (or, on
    TPUEstimator, ``params["context"]``: ``_pipeline_of``)."""
    pipelines, pipeline_id = _pipeline_of(params)
    place = _Place(
        pipelines=pipelines,
        pipeline_id=pipeline_id,
        streams=len(config.groups) if config.is_training and config.groups else 1,
        mask_seed=mask_seed)
    d = _records(config, spec, place)
    bucketed = len(config.length_buckets) > 1
    if bucketed and config.is_training:
        d = length_buckets.grouped(d, params["batch_size"], functools.partial(
            length_buckets.window_seed, place.mask_seed),
            together=length_buckets.TPU_RUN if config.bucket_tags else 1)
    else:
        # TPUs need fixed shapes; the loop's step count assumes full batches too.
        d = d.batch(params["batch_size"], drop_remainder=True)
    if config.masking is not None:
        d = _masked(d, config, place)  # at full length: masks stay inside the real tokens
    if bucketed:
        import tensorflow.compat.v1 as tf

        step = length_buckets.tagged if config.bucket_tags else length_buckets.cut
        d = d.map(tf.autograph.experimental.do_not_convert(
            functools.partial(step, boundaries=config.length_buckets)))
    return d.prefetch(2)


def _pipeline_of(params: dict) -> Tuple[int, int]:
    """(input pipelines in all, this one's number): tf.distribute's input context (a pipeline
    per worker), or on a TPU pod TPUEstimator's context (a pipeline per input host, each
    reading its share as a worker does); else (1, 0)."""
    context = params.get("input_context")
    if context is not None:
        return context.num_input_pipelines, context.input_pipeline_id
    tpu = params.get("context")  # TPUEstimator's TPUContext, on a TPU only
    if tpu is not None and int(tpu.num_hosts) > 1:
        return int(tpu.num_hosts), int(tpu.current_host)
    return 1, 0


def _records(config: InputConfig, spec: dict, place: _Place):
    """Decoded records (pairs, for chunks): training's for ever, shuffled, this pipeline's
    share, mixed from the named groups; evaluation's one ordered pass."""
    import tensorflow.compat.v1 as tf

    if config.is_training and config.groups:
        # One stream per group, each sharded and shuffled as a plain set is; a record's
        # group drawn with the groups' shares. Seeded per pipeline: the same draws for the
        # same seed, and workers' batches not made of groups in the same order.
        streams = [_decoded(_file_records(list(g.files), config, place, "group %s: " % g.name),
                            config, spec, place, k) for k, g in enumerate(config.groups)]
        seed = config.seed
        if seed is not None:
            seed = seed * place.pipelines + place.pipeline_id
        return _mixed(streams, [g.share for g in config.groups], seed)
    if config.is_training:
        return _decoded(_file_records(list(config.input_files), config, place),
                        config, spec, place)
    # One ordered pass: the same batches, in the same order, at every evaluation (on a pod,
    # each input host's share of them).
    d = tf.data.TFRecordDataset(list(config.input_files))
    if place.pipelines > 1:
        d = d.shard(place.pipelines, place.pipeline_id)
    return _decoded(d, config, spec, place)


def _file_records(files: List[str], config: InputConfig, place: _Place, what: str = ""):
    """Records of ``files`` for ever, shuffled: this pipeline's share of them."""
    import tensorflow.compat.v1 as tf

    # Under multi-worker training, each worker reads its own share (tf.distribute does not
    # shard a graph-mode input for it): whole files where there are enough, else records.
    pipelines, pipeline_id = place.pipelines, place.pipeline_id
    by_record = 1 < pipelines and len(files) < pipelines
    if by_record and pipeline_id == 0:
        logging.warning("%s%d record files for %d workers: each reads every file and keeps "
                        "its share of the records; more files than workers read faster",
                        what, len(files), pipelines)
    read = tf.data.TFRecordDataset
    if by_record:
        # Within each file, not over the repeated stream: a file of an odd number of
        # records would otherwise give each worker the other's records next epoch.
        read = functools.partial(_file_share, pipelines=pipelines, pipeline_id=pipeline_id)
    d = tf.data.Dataset.from_tensor_slices(tf.constant(files))
    if 1 < pipelines and not by_record:
        d = d.shard(pipelines, pipeline_id)  # before any shuffle
    d = d.repeat().shuffle(buffer_size=len(files), seed=config.seed)
    d = d.interleave(
        read,
        cycle_length=min(config.num_cpu_threads, len(files)),
        num_parallel_calls=min(config.num_cpu_threads, len(files)),
    )
    return d.shuffle(buffer_size=config.shuffle_buffer, seed=config.seed)


def _file_share(path, pipelines: int, pipeline_id: int):
    """The records of one file that pipeline ``pipeline_id`` of ``pipelines`` reads."""
    import tensorflow.compat.v1 as tf

    return tf.data.TFRecordDataset(path).shard(pipelines, pipeline_id)


def _decoded(d, config: InputConfig, spec: dict, place: _Place, stream_id: int = 0):
    """``d``'s records parsed; chunks (--pairing=dynamic) made into pairs (``_paired``)."""
    d = d.map(functools.partial(_decode, spec), num_parallel_calls=config.num_cpu_threads)
    if config.pairing is None:
        return d
    return _paired(d, config, place, stream_id)


def _decode(spec: dict, record):
    """One serialised record's features, int64 as int32."""
    import tensorflow.compat.v1 as tf

    example = tf.io.parse_single_example(record, spec)
    # TPUs have no int64 ops; every model op takes int32 just as well.
    return {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in example.items()}


def _paired(d, config: InputConfig, place: _Place, stream_id: int):
    """Chunks made into pairs, a window of ``PAIRING_WINDOW`` at a time.

    A random next sentence comes from the same window, so from the same stream (one group:
    one language or source, as the builder draws it from its own input) and never depends on
    the batch size.
    """
    import tensorflow.compat.v1 as tf

    # Plain TF ops, traced as written: autograph has nothing to convert.
    @tf.autograph.experimental.do_not_convert
    def make_pairs(number, window):
        return pair_batch(window, config.pairing, _window_seed(place, number, stream_id))

    d = d.batch(PAIRING_WINDOW).enumerate()
    return d.map(make_pairs, num_parallel_calls=config.num_cpu_threads).unbatch()


def _window_seed(place: _Place, number, stream_id: int):
    """A pairing window's own seed [2]: (the run's, its number over all pipelines and
    streams), negative so that no batch's mask seed equals it."""
    import tensorflow.compat.v1 as tf

    return tf.stack([tf.constant(place.mask_seed, tf.int64),
                     -1 - ((number * place.pipelines + place.pipeline_id) * place.streams
                           + stream_id)])  # [2]


def _masked(d, config: InputConfig, place: _Place):
    """Batches of unmasked records with their masks drawn (``--masking=dynamic``)."""
    import tensorflow.compat.v1 as tf

    # Plain TF ops, traced as written: autograph has nothing to convert, and trying printed a
    # "could not transform" warning at every run.
    @tf.autograph.experimental.do_not_convert
    def draw_masks(number, batch):
        return mask_batch(batch, config.masking, _batch_seed(place, number))

    return d.enumerate().map(draw_masks, num_parallel_calls=config.num_cpu_threads)


def _batch_seed(place: _Place, number):
    """A batch's mask seed [2]: (the run's, its number interleaved over pipelines)."""
    import tensorflow.compat.v1 as tf

    return tf.stack([tf.constant(place.mask_seed, tf.int64),
                     number * place.pipelines + place.pipeline_id])  # [2]


def _mixed(datasets, weights, seed):
    """``datasets`` mixed: each element drawn from dataset i with probability ``weights[i]``."""
    import tensorflow.compat.v1 as tf

    if len(datasets) == 1:
        return datasets[0]
    # Dataset.sample_from_datasets (TF 2.7 on) is what tf.data.experimental's (TF 1.15, and
    # deprecated since) wraps: the same draws for the same seed, without the notice.
    sample = getattr(tf.data.Dataset, "sample_from_datasets", None)
    if sample is None:
        sample = tf.data.experimental.sample_from_datasets
    return sample(datasets, weights=weights, seed=seed)
