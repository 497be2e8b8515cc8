"""The sharded data build as an Apache Beam pipeline (``--runner``): the same shards, on any
runner.

``create_pretraining_data --runner=R --num_output_shards=K`` plans the build on the launching
machine as the local sharded mode does (``norbert.data.sharded.plan_jobs``: the vocab checked,
the input cut into K slices from its files' sizes and metadata, a few bytes read per file),
then runs the shards' work as a pipeline: the runner spreads the K jobs over its workers, and
each worker builds a shard whole with the sharded mode's own code (``sharded.build_shard``: its
slice read, tokenised, paired, masked, written under a temporary name and renamed when
complete, then its sidecar). So the records are those of the local sharded mode, byte for
byte, for the same input, settings, seed and K: they depend on none of the runner, its number
of workers, or its retries of failed bundles (a retried shard is rebuilt identically and
replaces the first attempt's file only when complete). With ``--dedup=exact`` the pipeline
first digests every slice's documents, groups the digests, and sends each shard the ordinals of
its documents that repeat an earlier one (``norbert.data.dedup``): the local mode's answer,
without one machine's memory.

With ``--heldout_documents`` the launching machine, after the plan, reads every slice once
more for its held-out candidates (local processes, as the local sharded mode does:
``sharded.with_heldout``), writes the held-out records and tells each shard's job which of its
documents to leave out; the pipeline then builds the shards as usual.

Shards complete from an earlier run (file and sidecar with the same settings) are kept, as in
the local mode; the launcher then writes the set's sidecar from the shards' sidecars. A pipeline
that fails (bad input met in one bundle: the plan reads no text) ends in the one-line error the
input gives on this machine, wherever its worker ran (``beam_runner.worker_error``), and leaves
none of this run's shards behind, though other bundles finished theirs: the launcher removes
them, as the local mode does after bad input. An interrupted launcher (Ctrl-C, a lost machine)
keeps them, and a rerun continues.

Workers need norbert installed (on Dataflow: ``--beam_pipeline_options=...,setup_file=./setup.py``
or ``extra_packages=dist/norbert-<version>.tar.gz``) and read and write through
``norbert.fileio`` (TensorFlow's file system for ``gs://``).
"""

import dataclasses
import time
from typing import Dict, FrozenSet, Iterable, List, Tuple

from absl import logging

from norbert import beam_runner
from norbert.data import dedup, sharded
from norbert.errors import NorbertError


def _digests(job: sharded.ShardJob) -> Iterable[Tuple[bytes, Tuple[int, int]]]:
    """(digest, (shard index, ordinal)) for each document of ``job``'s slice."""
    digests = dedup.slice_digests(sharded.slice_reader(job))
    for ordinal, digest in enumerate(dedup.split(digests)):
        yield digest, (job.index, ordinal)


def _repeats(group: Tuple[bytes, Iterable[Tuple[int, int]]]) -> Iterable[Tuple[int, int]]:
    """All but the earliest (shard, ordinal) of one digest's documents: those to drop."""
    places = sorted(group[1])
    return places[1:]


def _build(keyed: Tuple[int, Dict[str, List]]) -> Dict:
    """Builds one shard from its job and the ordinals to drop; returns its sidecar."""
    _, parts = keyed
    (job,) = parts["job"]
    skip = frozenset(ordinal for _, ordinal in parts.get("drop", ()))
    return sharded.build_shard(dataclasses.replace(job, skip=skip))


def run_jobs(jobs: List[sharded.ShardJob], kept: FrozenSet[int], pipeline_options,
             deduplicate: bool) -> None:
    """Builds the shards of ``jobs`` but those in ``kept`` as one Beam pipeline; returns when
    the runner is done. With ``deduplicate``, every slice is digested, kept shards' too: the
    first copy of a document may lie in any earlier slice."""
    beam = beam_runner.import_beam()
    with beam_runner.pipeline(pipeline_options) as pipeline:
        keyed_jobs = (pipeline
                      | "jobs" >> beam.Create([(job.index, job) for job in jobs])
                      | "spread" >> beam.Reshuffle())
        parts = {"job": keyed_jobs}
        if deduplicate:
            parts["drop"] = (keyed_jobs
                             | "digest" >> beam.FlatMap(lambda kv: _digests(kv[1]))
                             | "by digest" >> beam.GroupByKey()
                             | "repeats" >> beam.FlatMap(_repeats)
                             | "by shard" >> beam.Map(lambda place: (place[0], place)))
        _ = (parts
             | "together" >> beam.CoGroupByKey()
             | "todo" >> beam.Filter(lambda kv: kv[0] not in kept)
             | "build" >> beam.Map(_build))


def build(config, options, beam_config: beam_runner.BeamConfig, input_paths: List[str],
          start: float):
    """The sharded build on Beam's ``beam_config.runner``; returns the ``DataSummary``."""
    pipeline_options = beam_runner.pipeline_options(beam_config)  # checked before the plan
    if config.num_workers is not None:
        raise beam_runner.local_workers_error("building")
    if config.num_output_shards is None:
        raise NorbertError(
            "--runner needs --num_output_shards: the shard count fixes the records (give a few "
            "times the number of cores the runner will have)"
        )
    planned = sharded.plan_jobs(config, options, input_paths)
    if config.plan_only:
        return sharded.planned_only(config, planned, start)
    heldout_summary = None
    if config.heldout_documents:  # on the launching machine, as the plan (module docstring)
        planned.jobs, heldout_summary = sharded.with_heldout(config, options, planned.jobs,
                                                             config.workers)
    results = sharded.kept_shards(planned.jobs)
    todo = len(planned.jobs) - len(results)
    logging.info("%d shard(s) to build of %d on Beam's %s, %.1f MB of input", todo,
                 len(planned.jobs), beam_config.runner, planned.plan.total_bytes / 1e6)
    if todo:
        deduplicate = config.dedup == "exact"
        jobs = [job for job in planned.jobs if deduplicate or job.index not in results]
        sharded.forget_set(config)
        began = time.perf_counter()
        try:
            run_jobs(jobs, frozenset(results), pipeline_options, deduplicate)
        except Exception:
            # Bad input met in one bundle fails the pipeline after others finished their
            # shards: remove what this run built, as the local mode does (Ctrl-C keeps them).
            sharded.remove_built([job for job in planned.jobs if job.index not in results])
            raise
        logging.info("the pipeline ran in %.1f s", time.perf_counter() - began)
        for job in planned.jobs:
            if job.index not in results:
                meta = sharded.complete_shard(job)
                if meta is None:
                    raise NorbertError(
                        "the Beam pipeline finished without shard %s: see the runner's log"
                        % job.path)
                results[job.index] = meta
    return sharded.finish(config, planned, results, todo, start, heldout_summary)
