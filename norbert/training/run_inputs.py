"""The records a run reads: files found, sidecars read once, checked, made into input_fns.

The run plan (``norbert.training.pretraining``) finds each flag's files (``sources_of``), reads
every file's sidecar once, then calls ``training_inputs`` and ``evaluation_inputs``, before any
graph: a wrong file costs a second. Named groups
(``--input_file=nb=data/nb-*,en=data/en-*``) are mixed while training with the shares
``MixingConfig`` makes; in evaluation each group is also read alone, for its own metrics.
What was decided (dynamic masks or pairs, the groups' shares) comes back as lines for the run
plan's block.
"""

import dataclasses
from typing import List, Mapping, Optional, Tuple

from absl import logging

from norbert.errors import NorbertError
from norbert.training import input_pipeline, record_checks
from norbert.training.input_pipeline import InputConfig, RecordInput
from norbert.training.mixing import MixingConfig, describe, mix

Sidecars = Mapping[str, Optional[dict]]  # record file -> its sidecar (None: it has none)


@dataclasses.dataclass(frozen=True)
class RecordShape:
    """What every record of a run holds, as the flags say (the records must agree)."""

    max_seq_length: int
    max_predictions_per_seq: int
    # (vocab_size, the bert_config file that says it): no token id may reach it.
    vocab: Tuple[int, str]


@dataclasses.dataclass(frozen=True)
class Inputs:
    """The checked records of one flag (--input_file or --eval_input_file)."""

    flag: str
    # Every record of the flag (mixed by the groups' shares when training).
    input_fn: RecordInput
    # Evaluation: (name, input_fn) of each named group big enough for a batch of its own.
    groups: Tuple[Tuple[str, RecordInput], ...] = ()
    # What was decided, for the run plan's block: one line each.
    notes: Tuple[str, ...] = ()

    def files_by_source(self) -> List[List[str]]:
        """The record files, one list per build (a group may come from a build of its own)."""
        groups = self.input_fn.config.groups
        return [list(g.files) for g in groups] if groups else [self.input_fn.config.input_files]


def _checked_config(files: List[str], flag: str, is_training: bool, shape: RecordShape,
                    seed: Optional[int], sidecars: Sidecars) -> Tuple[InputConfig, List[str]]:
    """The input config of ``files`` after every check, and the lines saying how they read."""
    config = InputConfig(input_files=files, max_seq_length=shape.max_seq_length,
                         max_predictions_per_seq=shape.max_predictions_per_seq,
                         is_training=is_training, seed=seed)
    record_checks.check_data(config, flag, shape.vocab, sidecars)
    notes = []
    masking, pairing = record_checks.dynamic_records_of(files, shape.max_predictions_per_seq,
                                                        flag, sidecars)
    if masking is not None:
        notes.append("masks drawn as records are read (masked_lm_prob %g%s)"
                     % (masking.masked_lm_prob, ", whole words" if masking.whole_word else ""))
    if pairing is not None:
        notes.append("sentence pairs made of chunks as records are read")
    return dataclasses.replace(config, masking=masking, pairing=pairing), notes


@dataclasses.dataclass(frozen=True)
class Sources:
    """The record files a flag names: every file, and its named groups if it names any."""

    flag: str
    files: List[str]
    # [(name, files)] of name=glob,... (mixed in training, each evaluated alone); None: plain.
    groups: Optional[List[Tuple[str, List[str]]]] = None


def sources_of(spec: str, flag: str) -> Sources:
    """The files of a flag's value (comma-separated globs, or name=glob,... groups)."""
    named = record_checks.record_groups(spec, flag)
    if named is None:
        return Sources(flag, record_checks.record_files(spec, flag))
    return Sources(flag, [path for _, group_files in named for path in group_files], named)


def training_inputs(sources: Sources, shape: RecordShape, seed: Optional[int],
                    mixing: MixingConfig, sidecars: Sidecars) -> Inputs:
    """The training records, mixed by their groups' shares when named. ``sidecars``: every
    file's sidecar, read once for the run (``record_checks.read_sidecars``)."""
    flag = sources.flag
    if sources.groups is None and mixing.given:
        raise NorbertError(
            "--%s needs named groups in --input_file to mix: name=glob,... (e.g. "
            "nb=data/nb-*,en=data/en-*)" % ("sampling_weights" if mixing.sampling_weights
                                            is not None else "sampling_exponent"))
    config, notes = _checked_config(sources.files, flag, True, shape, seed, sidecars)
    if sources.groups is not None:
        sizes = [_records(group_files, flag, sidecars) for _, group_files in sources.groups]
        groups = mix(sources.groups, sizes, mixing, flag)
        notes += describe(groups, mixing)
        config = dataclasses.replace(config, groups=groups)
    return Inputs(flag, input_pipeline.make_input_fn(config), notes=tuple(notes))


def reseeded(inputs: Inputs, seed: int) -> Inputs:
    """``inputs`` drawing their order, masks and pairs from ``seed`` (the data stream's, decided
    with its position: ``norbert.training.data_position``)."""
    config = dataclasses.replace(inputs.input_fn.config, seed=seed)
    return dataclasses.replace(inputs, input_fn=input_pipeline.make_input_fn(config))


def bucketed(inputs: Inputs, boundaries: Tuple[int, ...], tags: bool = False) -> Inputs:
    """``inputs`` with their batches cut to length buckets (``length_buckets.parse``), the
    named groups' own evaluation inputs too; ``tags``: tagged with their bucket instead
    (TPUEstimator's fixed shapes: ``length_buckets.tagged``)."""
    def cut(input_fn: RecordInput) -> RecordInput:
        return input_pipeline.make_input_fn(dataclasses.replace(
            input_fn.config, length_buckets=tuple(boundaries), bucket_tags=tags))

    return dataclasses.replace(inputs, input_fn=cut(inputs.input_fn),
                               groups=tuple((name, cut(fn)) for name, fn in inputs.groups))


def evaluation_inputs(sources: Sources, shape: RecordShape, seed: Optional[int],
                      eval_batch_size: int, sidecars: Sidecars) -> Inputs:
    """The held-out records: one ordered pass over all, and each named group alone (for its
    own metrics) when it holds at least one batch."""
    flag = sources.flag
    config, notes = _checked_config(sources.files, flag, False, shape, seed, sidecars)
    per_group = []
    for name, group_files in sources.groups or ():
        size = _records(group_files, flag, sidecars)
        notes.append("group %s: %d files, %d records" % (name, len(group_files), size))
        if size < eval_batch_size:
            logging.warning("%s: group %s has %d records, fewer than one batch "
                            "(--eval_batch_size=%d): no metrics of its own", flag, name, size,
                            eval_batch_size)
            continue
        per_group.append((name, input_pipeline.make_input_fn(
            dataclasses.replace(config, input_files=group_files))))
    return Inputs(flag, input_pipeline.make_input_fn(config), tuple(per_group), tuple(notes))


def _records(files: List[str], flag: str, sidecars: Sidecars) -> int:
    return sum(record_checks.records_in(path, flag, sidecars) for path in files)
