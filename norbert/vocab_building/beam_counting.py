"""The vocab builder's word counting as an Apache Beam pipeline (``--runner``): the same counts
as the local counter, on any runner; the learning then runs on the launching machine.

The launcher cuts the input into the local counter's tasks (``word_counts.plan_stage``: byte
ranges of local plain files, whole ``.gz`` and remote files), and the pipeline counts each task
with the local counter's own code (``word_counts.count_task``) and sums the counts per word.
Counting is addition, so the table is the local one exactly, whatever the runner, its number of
workers or its retries. The sums are written to ``BUCKETS`` text files (a word's file chosen by a
hash of it), one ``word<TAB>count`` line per word, under a temporary folder, read back on the
launcher and deleted: the table never has to pass through the runner's own channel to the
launcher, which may be small.

The temporary folder is made under the pipeline's ``temp_location`` when given, else next to the
output; a runner on other machines (Dataflow, a Flink or Spark cluster) needs storage that they
and the launcher share, so give it ``temp_location=gs://...`` (Dataflow asks for it anyway).
Workers need norbert installed, as for the data builder (``norbert.data.beam``).
"""

import collections
import os
import re
import shutil
import time
import uuid
import zlib
from typing import Dict, Iterable, Iterator, List, Tuple

from absl import logging

from norbert import beam_runner, fileio
from norbert.errors import NorbertError
from norbert.tokenization.options import TokenizerOptions
from norbert.vocab_building import word_counts

# Keys for what a task read, summed with the words: no word holds a space (see _escape).
_BYTES, _LINES = " bytes", " lines"

# Words come out of str.split() and are only lower-cased, stripped of accents and cut at
# punctuation after it, so none holds whitespace, tabs and newlines included: a line
# "word<TAB>count" is unambiguous as it is. The escape keeps it so should that ever change
# (a backslash is escaped too, so that reading undoes exactly what writing did).
_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n"})
_UNESCAPE = {"\\": "\\", "t": "\t", "n": "\n"}
_ESCAPED_RE = re.compile(r"\\(.)", re.S)


def _escape(word: str) -> str:
    return word.translate(_ESCAPE)


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPED_RE.sub(lambda m: _UNESCAPE[m.group(1)], text)


def plan_tasks(paths: List[str], max_bytes: int = 0,
               range_bytes: int = word_counts.RANGE_BYTES) -> List[word_counts.Task]:
    """The local counter's tasks for ``paths``, all known up front, or a ``NorbertError``.

    With a limit, the tasks after a ``.gz`` or remote file depend on the size of its text, known
    only once it is read; a pipeline is planned before anything is read, so such a limit is
    refused (a limit that ends before that file, or at the last file, is planned as locally).
    """
    pending = list(paths)
    tasks, remaining = word_counts.plan_stage(pending, max_bytes if max_bytes > 0 else None,
                                              range_bytes)
    if pending and remaining is not None and remaining > 0:
        raise NorbertError(
            "--max_input_bytes=%d reaches past %s, whose text size is known only once read, "
            "and --runner plans the input before reading it: put plain local files first and "
            "end the limit within them, or leave out one of the flags"
            % (max_bytes, tasks[-1].path))
    return tasks


def _task_counts(task: word_counts.Task, do_lower_case: bool,
                 options: TokenizerOptions) -> Iterator[Tuple[str, int]]:
    """(word, count) of one task, and what it read under the keys _BYTES and _LINES."""
    result = word_counts.count_task(task, do_lower_case, options)
    yield _BYTES, result.bytes_read
    yield _LINES, result.lines
    yield from result.words.items()


def _line(word_count: Tuple[str, int]) -> str:
    word, n = word_count
    return "%s\t%d" % (_escape(word), n)


BUCKETS = 16  # files the sums are written to: a few, so that writing them is spread too


def _bucket(word_count: Tuple[str, int]) -> Tuple[int, Tuple[str, int]]:
    """(the file a word's sum goes to, the sum): by a hash that is the same in every process
    (Python's own ``hash`` of a str is salted per process)."""
    return zlib.crc32(word_count[0].encode("utf-8")) % BUCKETS, word_count


def _write_bucket(bucket: Tuple[int, Iterable[Tuple[str, int]]], prefix: str) -> None:
    """One file of ``word<TAB>count`` lines, written under a temporary name and renamed."""
    index, sums = bucket
    lines = "".join(_line(word_count) + "\n" for word_count in sums)
    with fileio.atomic_output("%s-%05d" % (prefix, index), "wb") as f:
        f.write(lines.encode("utf-8"))


def _temp_folder(pipeline_options, near: str) -> str:
    """A new folder's name under the pipeline's ``temp_location``, else beside the file ``near``."""
    root = pipeline_options.get_all_options().get("temp_location")
    if not root:
        root = (near.rsplit("/", 1)[0] if fileio.is_remote(near)
                else os.path.dirname(os.path.abspath(near)))
    return "%s/norbert-word-counts-%s" % (root.rstrip("/"), uuid.uuid4().hex)


def _run(tasks: List[word_counts.Task], do_lower_case: bool, options: TokenizerOptions,
         pipeline_options, prefix: str) -> None:
    beam = beam_runner.import_beam()
    with beam_runner.pipeline(pipeline_options) as pipeline:
        _ = (pipeline
             | "tasks" >> beam.Create(tasks, reshuffle=False)
             | "spread" >> beam.Reshuffle()  # one task per element, for the runner to share
             | "count" >> beam.FlatMap(_task_counts, do_lower_case, options)
             | "sum" >> beam.CombinePerKey(sum)
             | "bucket" >> beam.Map(_bucket)
             | "by bucket" >> beam.GroupByKey()
             # Written here rather than by Beam's WriteToText, whose files Beam's Dask runner
             # (2.77) leaves empty: a last step that writes is run by every runner.
             | "write" >> beam.Map(_write_bucket, prefix))


def _read_counts(prefix: str) -> Tuple["collections.Counter[str]", Dict[str, int]]:
    """The word counts in the files written under ``prefix``, and the totals among them."""
    words = collections.Counter()
    totals = {}
    for index in range(BUCKETS):
        path = "%s-%05d" % (prefix, index)
        if not fileio.exists(path):  # no word fell in this bucket
            continue
        for line in fileio.LineReader().lines(path):
            key, n = line.rsplit("\t", 1)
            key = _unescape(key)
            if key in words or key in totals:  # sums are per key: a repeat would count twice
                raise NorbertError("the Beam pipeline wrote %r twice in %s: see the runner's log"
                                   % (key, os.path.dirname(prefix)))
            if key in (_BYTES, _LINES):
                totals[key] = int(n)
            else:
                words[key] = int(n)
    return words, totals


def _remove(folder: str) -> None:
    """Deletes the temporary folder; a failure is a warning, not the run's error."""
    try:
        if fileio.is_remote(folder):
            from apache_beam.io.filesystems import FileSystems

            FileSystems.delete([folder + "/"])  # the trailing "/": everything under the prefix
        elif os.path.exists(folder):
            shutil.rmtree(folder)
    except Exception as e:  # pylint: disable=broad-except
        logging.warning("could not delete the temporary counts %s: %s", folder, e)


def count_words(
    paths: Iterable[str],
    do_lower_case: bool,
    beam_config: beam_runner.BeamConfig,
    near: str,
    max_bytes: int = 0,
    options: TokenizerOptions = TokenizerOptions(),
    range_bytes: int = word_counts.RANGE_BYTES,
) -> Tuple["collections.Counter[str]", word_counts.CountStats]:
    """``word_counts.count_words`` on Beam's ``beam_config.runner``: the same counts and stats.

    The counts pass through a temporary folder beside the file ``near`` (or under the
    pipeline's ``temp_location``), deleted afterwards.
    """
    pipeline_options = beam_runner.pipeline_options(beam_config)  # errors before any reading
    paths = list(paths)
    tasks = plan_tasks(paths, max_bytes, range_bytes)
    if not tasks:  # empty files only: nothing to run
        return collections.Counter(), word_counts.CountStats(len(paths), 0, 0)
    folder = _temp_folder(pipeline_options, near)
    created = fileio.make_folders(os.path.dirname(folder))  # nothing for a remote folder
    began = time.perf_counter()
    try:
        _run(tasks, do_lower_case, options, pipeline_options, folder + "/counts")
        words, totals = _read_counts(folder + "/counts")
    finally:
        _remove(folder)
        fileio.remove_folders(created)
    if _BYTES not in totals:  # every task adds to it: the counts were lost on the way
        raise NorbertError(
            "the Beam pipeline on %s finished but its counts in %s are missing: a runner on "
            "other machines needs storage shared with this one (temp_location=gs://... in "
            "--beam_pipeline_options); else see the runner's log" % (beam_config.runner, folder))
    logging.info("counted %d tasks on Beam's %s in %.1f s: %d distinct words", len(tasks),
                 beam_config.runner, time.perf_counter() - began, len(words))
    return words, word_counts.CountStats(len(paths), totals[_BYTES], totals[_LINES])
