"""The sharded data builder: parallel, streaming (bounded memory) and resumable.

``create_pretraining_data`` comes here when ``num_workers`` or ``num_output_shards`` is given.
The records are built by the same code as in reference-exact mode (``norbert.data.instances``,
``norbert.data.masking``, ``norbert.data.features``), but the work is cut differently, so they are
not the reference's:

1. **Plan** (``norbert.data.slices``; from metadata: file sizes, Parquet row groups, reading
   at most a few bytes per file): the input, taken as one stream of documents in file order,
   is cut into ``K`` slices of about equal bytes; a slice owns the documents that start in it.
2. **Shards**: shard ``k`` is built from slice ``k`` alone, by one worker process that reads and
   tokenises only that slice (seeking to it in plain files, and reading past its end to
   finish its last document). The slice is read in blocks of
   about ``block_mb`` megabytes of text (whole documents; one longer than a block is cut
   between sentences into block-sized parts); each block's documents are shuffled,
   cut into pairs ``dupe_factor`` times -- the random "next" sentences drawn from the block's
   documents, a bounded pool -- and masked, and its records shuffled and appended to the shard.
   A worker holds one block at a time: memory is bounded by ``block_mb``, not by the corpus.
3. **Randomness**: shard ``k`` uses its own ``random.Random`` seeded from ``(random_seed, k)``;
   so each shard depends on the input, the settings, the seed and ``K``, never on the number of
   workers or on which shards were built in an earlier run. The masking draws the candidates'
   random order lazily (``Masker(exact=False)``): the same distribution with fewer draws.
4. **Resuming**: a shard is written under a temporary name and renamed when complete, then its
   ``.meta.json`` sidecar is written. A rerun skips every shard whose file and sidecar exist with
   the same settings, inputs and shard index (and the file size the sidecar records), so an
   interrupted build (Ctrl-C, ``kill -9``, a lost machine) continues where it stopped, and no
   truncated shard is ever visible under its final name. The settings include the planner's
   version: shards cut by another planner are rebuilt (the log says so once), but for a set of
   one shard, the whole input either way. Bad input met while building (the plan reads no
   text: a .gz file cut short, a line that is not JSON) is an error that leaves none of this
   run's shards behind.

Compared with the reference's global shuffle, records are shuffled within blocks: train with
the input pipeline's file interleaving and shuffle buffer, as for any sharded data set.

With ``--heldout_documents`` every slice is first read once more for its held-out candidates
(in the workers), the held-out records written (``norbert.data.heldout``: the same file as in
the reference-exact mode), and each shard told which of its documents to leave out.
"""

import concurrent.futures
import dataclasses
import glob
import hashlib
import os
import queue as queue_module
import random
import time
import warnings
from typing import Callable, Dict, FrozenSet, List, Optional, Tuple

from absl import logging

from norbert import fileio
from norbert import progress as progresslib
from norbert.data import dedup, heldout, sidecar, slices, tfrecord
from norbert.data.config import DataSummary, load_tokenizer
from norbert.data.record_writing import encoded_records, record_writers
from norbert.data.documents import CorpusStats, Document
from norbert.data.draws import Draws
from norbert.data.features import MLM
from norbert.errors import NorbertError
from norbert.workers import pool_context

# Test hook: seconds to sleep after each block (to interrupt a build at a known point).
_DELAY_ENV = "NORBERT_TEST_BLOCK_DELAY"


# -- one shard -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ShardJob:
    """Everything a worker needs to build one shard (small: sent to another process)."""

    config: object  # the DataConfig
    options: object  # the TokenizerOptions
    input_paths: Tuple[str, ...]
    index: int
    start: slices.Position
    end: slices.Position
    path: str
    sidecar: Dict  # the sidecar without its counts
    # Ordinals of the slice's documents to leave out: repeats of earlier ones (--dedup=exact,
    # norbert.data.dedup), known only after every slice before this one was digested.
    skip: FrozenSet[int] = frozenset()
    # Ordinals of the slice's held-out documents and their copies (--heldout_documents,
    # norbert.data.heldout), known only after every slice was read once.
    heldout: FrozenSet[int] = frozenset()


def shard_seed(random_seed: int, index: int) -> int:
    """The seed of shard ``index``'s generator: a hash of the run's seed and the index."""
    digest = hashlib.sha256(b"norbert-shard/%d/%d" % (random_seed, index)).digest()
    return int.from_bytes(digest[:8], "big")


_TOOLS: Dict = {}  # per process: (vocab_file, options, ...) -> (tokenizer, masker, ...)


def _tools(config, options):
    key = (config.vocab_file, options, config.masking_config,
           config.masking, config.objective, config.max_seq_length,
           config.max_predictions_per_seq)
    tools = _TOOLS.get(key)
    if tools is None:
        tokenizer = load_tokenizer(config, options)[1]
        vocab_words = [tokenizer.inv_vocab[i] for i in range(len(tokenizer.vocab))]
        mask_pair, encoder = record_writers(config, vocab_words, exact=False)
        tools = (tokenizer, mask_pair, encoder)
        _TOOLS.clear()
        _TOOLS[key] = tools
    return tools


Progress = Callable[[int, int, int], None]  # (documents, instances, bytes) just done


def build_shard(job: ShardJob, progress: Optional[Progress] = None) -> Dict:
    """Builds one shard file and its sidecar; returns the sidecar."""
    started = time.perf_counter()
    config = job.config
    tokenizer, mask_pair, encoder = _tools(job.config, job.options)
    cls_id, sep_id = tokenizer.vocab["[CLS]"], tokenizer.vocab["[SEP]"]
    draws = Draws.for_rng(random.Random(shard_seed(config.random_seed, job.index)))
    frame = tfrecord.frame
    delay = float(os.environ.get(_DELAY_ENV) or 0)
    block_limit = int(config.block_mb * 1e6)
    stats = CorpusStats()
    counts = dict(instances=0, instance_tokens=0, masked_tokens=0, random_next=0)
    reader = slice_reader(job)

    def write_block(f, block: List[Document], nbytes: int) -> None:
        draws.shuffle(block)
        records = []
        append = records.append
        n_tokens = n_masked = n_random = 0
        for record, tokens, masked, is_random_next in encoded_records(
            block, config, mask_pair, encoder, draws, cls_id, sep_id,
        ):
            append(record)
            n_tokens += tokens
            n_masked += masked
            n_random += is_random_next
        draws.shuffle(records)
        write = f.write
        for record in records:
            write(frame(record))
        counts["instances"] += len(records)
        counts["instance_tokens"] += n_tokens
        counts["masked_tokens"] += n_masked
        counts["random_next"] += n_random
        if progress is not None:
            progress(len(block), len(records), nbytes)
        if delay:
            time.sleep(delay)

    _remove_leftovers(job.path)
    with fileio.atomic_output(job.path, "wb") as f:
        block: List[Document] = []
        block_bytes = 0
        read = slices.documents(iter(reader), tokenizer.encode, stats, block_limit, job.skip,
                                job.heldout)
        for document, nbytes in read:
            if document:
                block.append(document)
            block_bytes += nbytes
            if block_bytes >= block_limit and block:
                write_block(f, block, block_bytes)
                block, block_bytes = [], 0
        if block:
            write_block(f, block, block_bytes)
        elif block_bytes and progress is not None:
            progress(0, 0, block_bytes)
    stats.files = reader.files
    stats.lines = reader.lines_read
    stats.bad_lines = reader.bad_lines
    meta = sidecar.built_shard(job.sidecar, time.perf_counter() - started,
                               DataSummary(corpus=stats, **counts), _size(job.path))
    sidecar.write(sidecar.path_for(job.path), meta)
    return meta


def _size(path: str) -> Optional[int]:
    if fileio.is_remote(path):
        return None
    return os.path.getsize(path)


def _remove_leftovers(path: str, temporary: bool = True) -> None:
    """Removes the stale sidecar and the temporary files that a killed run left for ``path``."""
    if fileio.is_remote(path):
        return
    temporaries = glob.glob(glob.escape(path) + ".tmp-*") if temporary else []
    for stale in temporaries + [sidecar.path_for(path)]:
        if os.path.exists(stale):
            os.remove(stale)


def remove_built(todo: List[ShardJob]) -> None:
    """Removes the shards (and sidecars) this run built, after an error in the input met while
    building another: the plan reads no text, so bad input (a .gz file cut short, a line that
    is not JSON) shows only here, and a failed build leaves nothing, as before any work. (Also
    the Beam build's after a failed pipeline: ``norbert.data.beam``.)"""
    for job in todo:
        fileio.remove(job.path)
        fileio.remove(sidecar.path_for(job.path))
        _remove_leftovers(job.path)


def forget_set(config) -> None:
    """Removes an earlier build's sidecar of the whole set, written again once every shard is
    complete: a build cut short never leaves one that describes other shards."""
    _remove_leftovers(config.output_base, temporary=False)


def _earlier_sidecar(job: ShardJob) -> Optional[Dict]:
    """The sidecar an earlier run left beside ``job``'s shard file, if both are there."""
    side = sidecar.path_for(job.path)
    if not (fileio.exists(job.path) and fileio.exists(side)):
        return None
    try:
        return sidecar.read_file(side)
    except NorbertError:
        return None


def complete_shard(job: ShardJob) -> Optional[Dict]:
    """The sidecar of ``job``'s shard if an earlier run completed it with the same settings."""
    meta = _earlier_sidecar(job)
    if meta is None or not sidecar.same_shard(meta, job.sidecar):
        return None
    size = _size(job.path)
    if size is not None and sidecar.bytes_in_file(meta, job.path) != size:
        return None
    return meta


# -- the whole build -----------------------------------------------------------------------

_QUEUE = None  # a worker process's channel for progress reports


def _init_worker(queue) -> None:
    global _QUEUE
    _QUEUE = queue
    warnings.simplefilter("ignore")  # the parent already warned about the vocab's casing


def _report(documents: int, instances: int, nbytes: int) -> None:
    _QUEUE.put((documents, instances, nbytes))


def _build_in_worker(job: ShardJob) -> Dict:
    return build_shard(job, _report)


@dataclasses.dataclass
class Jobs:
    """The shards of a build: one job per shard, and the plan they were cut by."""

    jobs: List[ShardJob]
    plan: slices.Plan
    template: Dict  # the shards' sidecar without shard index or counts (for the set's sidecar)


def plan_jobs(config, options, input_paths: List[str]) -> Jobs:
    """Checks the vocab and the input, cuts the input into one slice per shard (from its
    files' metadata) and describes each shard's job; nothing is written."""
    tokenizer = _tools(config, options)[0]  # checks the vocab; kept for this process's shards
    vocab_bytes = fileio.read_bytes(config.vocab_file, what="vocab file")
    vocab_sha = hashlib.sha256(vocab_bytes).hexdigest()
    num_shards = config.shards
    output_paths = config.output_files
    plan = slices.plan_shards(input_paths, num_shards, text_field=config.text_field)
    if not plan.documents_seen:
        raise NorbertError(
            "--input_file %s holds no text: give files with one sentence per line and a blank "
            "line between documents" % config.input_file
        )
    template = sidecar.build(config, options, input_paths, output_paths,
                             config.output_base, vocab_sha, len(tokenizer.vocab),
                             vocab=tokenizer.vocab)
    template = sidecar.shard_template(template, plan.total_bytes, num_shards, config.block_mb,
                                      slices.PLANNER_VERSION)
    jobs = []
    for k, path in enumerate(output_paths):
        meta = sidecar.for_shard(template, path, k)
        jobs.append(ShardJob(config, options, tuple(input_paths), k, plan.cuts[k], plan.cuts[k + 1],
                             path, meta))
    return Jobs(jobs, plan, template)


_SAMPLE_BYTES = 1 << 16  # of the input's first text, tokenised for --plan_only's estimate


def records_per_byte(config, encode: Callable[[str], List[int]],
                     input_paths: List[str]) -> float:
    """An estimate of the records a byte of input makes: the tokens per byte of a sample (the
    input's first 64 KB of text), times ``dupe_factor``, over a record's mean target length
    (``max_seq_length - 3``, halved on average for the ``short_seq_prob`` share; for
    ``--objective=mlm`` ``max_seq_length - 2``, an upper bound without --cross_documents; with
    --whole_sentences less the padding a record takes on average when the sentence that does
    not fit opens the next one: the part of a sentence that crosses the record's end, half a
    sentence drawn by its length, ``E[n^2] / 2 E[n]`` over the sample's sentence lengths ``n``
    (each at most a body))."""
    body = config.max_seq_length - 2
    reader = slices.SliceReader(input_paths, (0, 0), (len(input_paths), 0), config.text_field)
    tokens = nbytes = clipped = squares = 0
    for line, n in reader:
        if line.strip():
            length = len(encode(line))
            tokens += length
            clipped, squares = clipped + min(length, body), squares + min(length, body) ** 2
        nbytes += n
        if nbytes >= _SAMPLE_BYTES:
            break
    per_record = (config.max_seq_length - 3) * (1 - config.short_seq_prob / 2)
    if config.objective == MLM:  # packed: records full but the last of each document
        per_record = body
        if config.whole_sentences and clipped:
            per_record -= squares / (2 * clipped)
    return tokens / nbytes * config.dupe_factor / per_record if nbytes else 0.0


def planned_only(config, planned: Jobs, start: float) -> DataSummary:
    """--plan_only: the plan as text in a ``DataSummary`` that built nothing."""
    paths = list(planned.jobs[0].input_paths)
    encode = _tools(config, planned.jobs[0].options)[0].encode
    lines = slices.describe(planned.plan, paths, records_per_byte(config, encode, paths))
    return DataSummary(corpus=CorpusStats(files=len(paths)), plan="\n".join(lines),
                       seconds=time.perf_counter() - start)


def slice_reader(job: ShardJob) -> slices.SliceReader:
    """The lines of ``job``'s slice of the input."""
    return slices.SliceReader(job.input_paths, job.start, job.end, job.config.text_field)


def _over_slices(read, jobs: List[ShardJob], workers: int) -> list:
    """``read(job)`` of every job, in order: in up to ``workers`` processes when there are
    several of both (``read`` a module-level function, picklable)."""
    if workers > 1 and len(jobs) > 1:
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=min(workers, len(jobs)), mp_context=pool_context()
        ) as executor:
            return list(executor.map(read, jobs))
    return [read(job) for job in jobs]


def _slice_digests(job: ShardJob) -> bytes:
    return dedup.slice_digests(slice_reader(job))


def with_repeats_skipped(jobs: List[ShardJob], workers: int) -> List[ShardJob]:
    """``jobs``, each told which of its documents repeat an earlier one (``--dedup=exact``):
    every slice digested (in ``workers`` processes), then the digests walked in input order
    with the set of those seen (memory: about 100 bytes per distinct document)."""
    drops = dedup.dropped(_over_slices(_slice_digests, jobs, workers))
    return [dataclasses.replace(job, skip=frozenset(drop)) for job, drop in zip(jobs, drops)]


def _slice_candidates(job: ShardJob) -> heldout.Candidates:
    config = job.config
    return heldout.slice_candidates(slice_reader(job), config.heldout_documents,
                                    config.random_seed, _tools(config, job.options)[0].encode)


def with_heldout(config, options, jobs: List[ShardJob],
                 workers: int) -> Tuple[List[ShardJob], DataSummary]:
    """``jobs``, each told which of its documents are held out (``--heldout_documents``),
    once every slice was read (in ``workers`` processes) for its candidates, and the held-out
    records' ``DataSummary``: they are written here (``norbert.data.heldout``)."""
    began = time.perf_counter()
    candidates = _over_slices(_slice_candidates, jobs, workers)
    selection = heldout.choose(candidates, config.heldout_documents, config.input_file)
    tokenizer = _tools(config, options)[0]
    vocab_bytes = fileio.read_bytes(config.vocab_file, what="vocab file")
    vocab_sha = hashlib.sha256(vocab_bytes).hexdigest()
    summary = heldout.write(config, options, tokenizer, vocab_sha, list(jobs[0].input_paths),
                            selection, config.output_files)
    logging.info("%d document(s) held out (%d copies left out) in %.1f s: %d record(s) in %s",
                 len(selection.documents), sum(map(len, selection.skip)),
                 time.perf_counter() - began, summary.instances, config.heldout_output_file)
    jobs = [dataclasses.replace(job, heldout=skip) for job, skip in zip(jobs, selection.skip)]
    return jobs, summary


def kept_shards(jobs: List[ShardJob]) -> Dict[int, Dict]:
    """The sidecars of the shards an earlier run completed with the same settings, by index."""
    kept, replanned = {}, []
    for job in jobs:
        meta = complete_shard(job)
        if meta is not None:
            kept[job.index] = meta
            logging.info("%s is complete (an earlier run): kept", job.path)
            continue
        earlier = _earlier_sidecar(job)
        if earlier is not None and sidecar.cut_by_other_planner(earlier, job.sidecar):
            replanned.append(sidecar.planner_of(earlier))
    if replanned:
        logging.info("%d shard(s) of %s were cut by input planner %d, this build's is %d "
                     "(slices from file sizes and metadata): they are rebuilt, their documents "
                     "may lie in other shards now", len(replanned), jobs[0].config.output_base,
                     replanned[0], slices.PLANNER_VERSION)
    return kept


def build(config, options, input_paths: List[str], start: float):
    """Builds the shards of ``config`` that are not complete yet; returns a ``DataSummary``."""
    planned = plan_jobs(config, options, input_paths)
    if config.plan_only:
        return planned_only(config, planned, start)
    if config.dedup == "exact":
        began = time.perf_counter()
        planned.jobs = with_repeats_skipped(planned.jobs, config.workers)
        logging.info("--dedup=exact: %d repeated document(s) found in %.1f s",
                     sum(len(job.skip) for job in planned.jobs), time.perf_counter() - began)
    heldout_summary = None
    if config.heldout_documents:
        planned.jobs, heldout_summary = with_heldout(config, options, planned.jobs,
                                                     config.workers)
    plan, jobs = planned.plan, planned.jobs
    results = kept_shards(jobs)
    todo = [job for job in jobs if job.index not in results]
    done_bytes = sum(plan.cut_bytes[k + 1] - plan.cut_bytes[k] for k in results)
    workers = min(config.workers, len(todo)) if todo else 0
    logging.info("%d shard(s) to build of %d, %d worker(s), %.1f MB of input",
                 len(todo), len(jobs), workers, plan.total_bytes / 1e6)
    if todo:
        forget_set(config)
    # Progress over input bytes (shards kept from an earlier run count as done).
    with progresslib.Progress("%d shard(s)" % len(todo), "B", total=plan.total_bytes,
                              initial=done_bytes, enabled=config.progress) as bar:

        def report(documents: int, instances: int, nbytes: int) -> None:
            bar.update(nbytes, documents=documents, instances=instances)

        try:
            if workers <= 1:
                for job in todo:
                    results[job.index] = build_shard(job, report)
            else:
                results.update(_run_pool(todo, workers, report))
        except NorbertError:
            remove_built(todo)
            raise
    return finish(config, planned, results, len(todo), start, heldout_summary)


def finish(config, planned: Jobs, results: Dict[int, Dict], built: int, start: float,
           heldout_summary: Optional[DataSummary] = None):
    """The build's ``DataSummary`` from every shard's sidecar; writes the set's sidecar
    (``<output_file>.meta.json``: the settings and the counts of all shards together)."""
    num_shards = len(planned.jobs)
    corpus = CorpusStats(files=len(planned.jobs[0].input_paths))
    summary = DataSummary(corpus=corpus, shards_skipped=num_shards - built)
    for k in range(num_shards):
        sidecar.add_counts(summary, results[k]["counts"])
        summary.records_per_file.append(sidecar.records_in_file(results[k],
                                                                planned.jobs[k].path))
    if not corpus.documents:
        raise NorbertError(
            "--input_file %s holds no text that the vocab tokenises" % config.input_file
        )
    if corpus.bad_lines:
        logging.warning("%d line(s) held bytes that are not UTF-8; they were replaced by U+FFFD",
                        corpus.bad_lines)
    empty_shards = summary.records_per_file.count(0)
    if empty_shards:
        logging.warning("%d of %d shard(s) got no records: the input has too few documents for "
                        "--num_output_shards=%d", empty_shards, num_shards, num_shards)
    sidecar.write(sidecar.path_for(config.output_base),
                  sidecar.for_set(planned.template, summary))
    if heldout_summary is not None:
        summary.heldout_documents = heldout_summary.corpus.documents
        summary.heldout_instances = heldout_summary.instances
    summary.seconds = time.perf_counter() - start
    return summary


def _run_pool(todo: List[ShardJob], workers: int, report: Progress) -> Dict[int, Dict]:
    """Builds ``todo`` in ``workers`` processes, each shard whole in one of them; the workers'
    progress reports come back over a queue and go to ``report`` here, in the parent."""
    # Fork where it is safe, so that workers start at once with the tokenizer loaded; spawn
    # once TensorFlow is loaded (gs:// paths) or off Linux (norbert.workers).
    context = pool_context()
    channel = context.Queue()
    results: Dict[int, Dict] = {}
    executor = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(channel,)
    )
    try:
        futures = {executor.submit(_build_in_worker, job): job.index for job in todo}
        pending = set(futures)
        while pending:
            try:
                while True:
                    report(*channel.get(timeout=0.2))
            except queue_module.Empty:
                pass
            finished = {f for f in pending if f.done()}
            for future in finished:
                results[futures[future]] = future.result()  # re-raises a worker's error
            pending -= finished
        try:
            while True:
                report(*channel.get_nowait())
        except queue_module.Empty:
            pass
    except BaseException as e:
        for future in futures:
            future.cancel()  # shards not started; those running finish, and a rerun keeps them
        # After an error in the input, wait for them: the build removes what it built.
        executor.shutdown(wait=isinstance(e, NorbertError))
        raise
    executor.shutdown(wait=True)
    return results
