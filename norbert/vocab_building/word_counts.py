"""Counting the words BERT's tokenizer sees in a corpus, in parallel, with bounded memory.

A word here is what ``norbert.tokenization.text`` makes of the text before WordPiece (cleaning,
whitespace, CJK and punctuation splitting, optional lower-casing), so a vocabulary learned from
these counts fits ``FullTokenizer`` exactly. Memory holds the count table, never the corpus.

Work is cut into tasks: byte ranges of local plain-text files (a line belongs to the range in
which it starts, so every line is counted once whatever the cut), and whole files for ``.gz``
and remote files, which cannot be entered in the middle. Counting is addition, so the table
does not depend on how many workers there are or in which order tasks finish.

``max_bytes`` limits the input to a prefix of the files taken in order: a line is read when fewer
than ``max_bytes`` bytes of (decompressed) text come before it. The size of a compressed file's
text is only known after reading it, so with a limit the tasks after such a file wait for it.
"""

import collections
import os
from typing import Callable, Iterable, List, NamedTuple, Optional, Tuple

from norbert import fileio, workers
from norbert.errors import NorbertError
from norbert.tokenization import text as textlib
from norbert.tokenization.options import TokenizerOptions

RANGE_BYTES = 8 << 20  # one task's share of a plain file: big enough to amortise, small for balance
_BLOCK_BYTES = 1 << 20  # text cleaned and split at once: C-speed string work per megabyte
_FOLD_CHUNKS = 1 << 20  # distinct chunks held before they are folded into word counts


class Task(NamedTuple):
    path: str
    start: int  # byte offset where the range starts (0 for a stream)
    end: Optional[int]  # lines starting before this offset are read; None: a whole stream
    budget: Optional[int]  # streams only: lines starting before this many bytes; None: all


class TaskResult(NamedTuple):
    words: "collections.Counter[str]"
    bytes_read: int
    lines: int


class CountStats(NamedTuple):
    files: int
    bytes_read: int
    lines: int


def splittable(path: str) -> bool:
    """Local plain files can be entered at any offset; gzip and remote streams cannot."""
    return not fileio.is_remote(path) and not path.endswith(".gz")


def range_tasks(path: str, size: int, range_bytes: int = RANGE_BYTES) -> List[Task]:
    """Byte ranges covering ``[0, size)`` of one plain file, in order."""
    step = max(1, range_bytes)
    return [Task(path, start, min(size, start + step), None) for start in range(0, size, step)]


def _fold(chunk_counts: "collections.Counter[str]", words: "collections.Counter[str]",
          do_lower_case: bool, options: TokenizerOptions) -> None:
    """Adds the words of each distinct chunk to ``words``: normalising once per distinct chunk.

    A never-split chunk is left out: the tokenizer keeps it whole, so it is a token of the
    vocab in its own right and nothing is learned from its letters.
    """
    normalize = textlib.normalize_chunk
    strip, cjk = options.strip_accents, options.tokenize_chinese_chars
    never_split = frozenset(options.never_split)
    for chunk, n in chunk_counts.items():
        if chunk in never_split:
            continue
        for word in normalize(chunk, do_lower_case, strip, cjk):
            words[word] += n
    chunk_counts.clear()


class _Counter:
    """Chunk counts for one task, folded into word counts when they grow large."""

    def __init__(self, do_lower_case: bool, options: TokenizerOptions):
        self.do_lower_case = do_lower_case
        self.options = options
        self.chunks = collections.Counter()
        self.words = collections.Counter()

    def add_text(self, text: str) -> None:
        # Cleaning is per character and "\n" is whitespace, so a block of lines splits into the
        # same chunks as its lines one by one; Counter.update counts in C.
        self.chunks.update(textlib.clean_text(text).split())
        if len(self.chunks) >= _FOLD_CHUNKS:
            _fold(self.chunks, self.words, self.do_lower_case, self.options)

    def result(self, bytes_read: int, lines: int) -> TaskResult:
        _fold(self.chunks, self.words, self.do_lower_case, self.options)
        return TaskResult(self.words, bytes_read, lines)


def _read_range(task: Task, counter: _Counter) -> Tuple[int, int]:
    """Counts the lines that start in ``[task.start, task.end)`` of a local plain file."""
    bytes_read = lines = 0
    with open(task.path, "rb") as f:
        if task.start > 0:
            # The line holding byte start-1 belongs to the previous range (it started there).
            f.seek(task.start - 1)
            f.readline()
        pos = f.tell()
        while pos < task.end:
            block = f.read(min(_BLOCK_BYTES, task.end - pos))
            if not block:
                break
            if not block.endswith(b"\n"):
                block += f.readline()  # the last line started inside the range: finish it
            if bytes_read == 0 and task.start == 0:
                fileio.LineReader.check_sample(task.path, block)  # binary, or not UTF-8?
            elif b"\x00" in block:
                fileio.LineReader.check_sample(task.path, block)
            pos += len(block)
            bytes_read += len(block)
            lines += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
            # Invalid UTF-8 becomes U+FFFD, which cleaning removes, as LineReader and the
            # tokenizer do.
            counter.add_text(block.decode("utf-8", "replace"))
    return bytes_read, lines


def _read_stream(task: Task, counter: _Counter) -> Tuple[int, int]:
    """Counts a whole ``.gz`` or remote file, or its lines that start before ``task.budget``."""
    reader = fileio.LineReader()
    batch: List[str] = []
    batch_bytes = 0
    lines = 0
    before = 0  # bytes before the current line
    for line in reader.lines(task.path):
        if task.budget is not None and before >= task.budget:
            break
        batch.append(line)
        lines += 1
        batch_bytes += reader.bytes_read - before
        before = reader.bytes_read
        if batch_bytes >= _BLOCK_BYTES:
            counter.add_text("\n".join(batch))
            batch, batch_bytes = [], 0
    counter.add_text("\n".join(batch))
    return before, lines


def count_task(task: Task, do_lower_case: bool,
               options: TokenizerOptions = TokenizerOptions()) -> TaskResult:
    """Word counts of one task; an unreadable file is a ``NorbertError`` naming it."""
    counter = _Counter(do_lower_case, options)
    try:
        if task.end is None:
            bytes_read, lines = _read_stream(task, counter)
        else:
            bytes_read, lines = _read_range(task, counter)
    except NorbertError:
        raise
    except (OSError, EOFError) as e:  # permission denied, a truncated or non-gzip .gz file
        raise NorbertError(
            "cannot read %s: %s (check the file; --input_file names it)"
            % (task.path, getattr(e, "strerror", None) or e)
        ) from None
    return counter.result(bytes_read, lines)


def _count_indexed(args):
    index, task, do_lower_case, options = args
    return index, count_task(task, do_lower_case, options)


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError as e:
        raise NorbertError("cannot read %s: %s" % (path, e.strerror or e)) from None


def plan_stage(pending: List[str], remaining: Optional[int], range_bytes: int = RANGE_BYTES
               ) -> Tuple[List[Task], Optional[int]]:
    """Takes from ``pending`` the tasks whose limits are known now; returns them and the budget
    left after them (None: no limit). Without a limit that is every file; with one, a stage
    ends after a stream, whose length is only known once it is read (the caller subtracts it).
    """
    stage: List[Task] = []
    while pending and (remaining is None or remaining > 0):
        path = pending.pop(0)
        if splittable(path):
            size = file_size(path)
            end = size if remaining is None else min(size, remaining)
            stage.extend(range_tasks(path, end, range_bytes))
            if remaining is not None:
                remaining -= size
        else:
            stage.append(Task(path, 0, None, remaining))
            if remaining is not None:
                break
    return stage, remaining


def count_words(
    paths: Iterable[str],
    do_lower_case: bool,
    num_workers: int = 1,
    max_bytes: int = 0,
    on_progress: Optional[Callable[[int, int], None]] = None,
    range_bytes: int = RANGE_BYTES,
    options: TokenizerOptions = TokenizerOptions(),
) -> Tuple["collections.Counter[str]", CountStats]:
    """Word -> count over ``paths`` (in order), and how much was read, with the tokenizer's
    ``do_lower_case`` and ``options``.

    ``max_bytes`` > 0 reads only lines that start before that many bytes of text; 0 reads all.
    ``on_progress(bytes, lines)`` is called as tasks finish. The counts are the same for any
    ``num_workers`` and ``range_bytes``.
    """
    paths = list(paths)
    words = collections.Counter()
    total_bytes = total_lines = 0
    remaining = max_bytes if max_bytes > 0 else None
    pool = None
    if num_workers > 1:
        # Fork, or spawn once TensorFlow is loaded (gs:// inputs): see norbert.workers.
        pool = workers.pool_context().Pool(num_workers)
    try:
        pending = list(paths)
        while pending and (remaining is None or remaining > 0):
            stage, remaining = plan_stage(pending, remaining, range_bytes)
            args = [(i, task, do_lower_case, options) for i, task in enumerate(stage)]
            if pool is None or len(args) == 1:
                results = map(_count_indexed, args)
            else:
                results = pool.imap_unordered(_count_indexed, args)
            for index, result in results:
                words.update(result.words)
                total_bytes += result.bytes_read
                total_lines += result.lines
                if remaining is not None and index == len(stage) - 1 and stage[index].end is None:
                    remaining -= result.bytes_read
                if on_progress is not None:
                    on_progress(result.bytes_read, result.lines)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return words, CountStats(len(paths), total_bytes, total_lines)
