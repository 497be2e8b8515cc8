"""Training and evaluation input: TFRecord files to batches of pretraining features.

The records' shapes are checked before any graph is built: against the sidecar that the data
builder writes beside each file (``<file>.meta.json``), or, for records from another builder,
against the first record itself. A ``max_seq_length`` or ``max_predictions_per_seq`` that does
not match the data is then a clear error naming the file and flag, not a parse failure deep
inside TensorFlow minutes into a run.
"""

import dataclasses
from typing import Callable, Dict, List, Optional

from norbert import fileio
from norbert.data import sidecar, tfrecord
from norbert.data.features import parse_spec
from norbert.errors import NorbertError


@dataclasses.dataclass(frozen=True)
class InputConfig:
    input_files: List[str]  # TFRecord files (local or gs://), already expanded
    max_seq_length: int
    max_predictions_per_seq: int
    is_training: bool  # repeat, shuffle and read files in parallel; else one ordered pass
    num_cpu_threads: int = 4  # files read in parallel while training
    shuffle_buffer: int = 100  # records; files are shuffled too, so a small buffer suffices
    seed: Optional[int] = None  # for the shuffles; None: a different order each run


def record_files(spec: str, flag: str = "--input_file") -> List[str]:
    """The record files named by a comma-separated list of files or globs.

    Sidecars (``.json``) that a glob such as ``data/*`` also matches are left out.
    """
    files = [p for p in fileio.expand_inputs(spec, flag) if not p.endswith(".json")]
    if not files:
        raise NorbertError("%s=%s matches only .json files, no records" % (flag, spec))
    return files


def _first_record_lengths(record_file: str) -> Optional[Dict[str, int]]:
    with fileio.open_binary(record_file) as f:
        header = f.read(12)
        if len(header) < 12:
            return None  # an empty file holds no shapes to check
        length = int.from_bytes(header[:8], "little")
        data = f.read(length)
    features = tfrecord.decode_example(data)
    return {name: len(values) for name, values in features.items()}


def check_data(config: InputConfig) -> None:
    """Raises ``NorbertError`` when the records' lengths differ from the flags."""
    want = {"max_seq_length": config.max_seq_length,
            "max_predictions_per_seq": config.max_predictions_per_seq}
    for path in config.input_files:
        meta = sidecar.read(path)
        if meta is not None:
            settings = meta.get("settings", meta)
            found = {k: settings.get(k) for k in want}
            where = "its sidecar says"
        else:
            lengths = _first_record_lengths(path)
            if lengths is None:
                continue
            found = {"max_seq_length": lengths.get("input_ids"),
                     "max_predictions_per_seq": lengths.get("masked_lm_positions")}
            where = "its first record has"
        for flag, value in want.items():
            if found[flag] is not None and found[flag] != value:
                raise NorbertError(
                    "--%s=%d does not match the data: %s %s %s=%d; pass --%s=%d or rebuild "
                    "the data" % (flag, value, path, where, flag, found[flag], flag, found[flag])
                )


def make_input_fn(config: InputConfig) -> Callable[[dict], object]:
    """``input_fn(params)`` for TPUEstimator and norbert's loop: ``params["batch_size"]``."""
    import tensorflow.compat.v1 as tf

    spec = parse_spec(config.max_seq_length, config.max_predictions_per_seq)

    def decode(record):
        example = tf.io.parse_single_example(record, spec)
        # TPUs have no int64 ops; every model op takes int32 just as well.
        return {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in example.items()}

    def input_fn(params):
        batch_size = params["batch_size"]
        files = list(config.input_files)
        if config.is_training:
            d = tf.data.Dataset.from_tensor_slices(tf.constant(files))
            d = d.repeat().shuffle(buffer_size=len(files), seed=config.seed)
            d = d.interleave(
                tf.data.TFRecordDataset,
                cycle_length=min(config.num_cpu_threads, len(files)),
                num_parallel_calls=min(config.num_cpu_threads, len(files)),
            )
            d = d.shuffle(buffer_size=config.shuffle_buffer, seed=config.seed)
        else:
            # One ordered pass: the same batches, in the same order, at every evaluation.
            d = tf.data.TFRecordDataset(files)
        d = d.map(decode, num_parallel_calls=config.num_cpu_threads)
        # TPUs need fixed shapes; the loop's step count assumes full batches too.
        d = d.batch(batch_size, drop_remainder=True)
        return d.prefetch(2)

    return input_fn
