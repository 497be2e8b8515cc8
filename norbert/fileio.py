"""File access for local paths and, through TensorFlow's ``tf.io.gfile``, ``gs://`` and friends.

Local files never import TensorFlow (it takes seconds and the data tools do not need it).
"""

import contextlib
import glob as _glob
import os
import uuid
from typing import IO, Iterator, List

from norbert.errors import NorbertError


def is_remote(path: str) -> bool:
    """True for a URL-style path (``gs://bucket/x``) that only ``tf.io.gfile`` can open."""
    return "://" in path


def _gfile():
    import tensorflow as tf  # deferred: only remote paths pay for it

    return tf.io.gfile


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def remove(path: str) -> None:
    """Removes the file ``path`` if it is there (a missing one is no error)."""
    if is_remote(path):
        gfile = _gfile()
        if gfile.exists(path):
            gfile.remove(path)
    elif os.path.exists(path):
        os.remove(path)


def size(path: str) -> int:
    """The file's size in bytes; a missing one is a ``NorbertError`` naming it."""
    try:
        return _gfile().stat(path).length if is_remote(path) else os.path.getsize(path)
    except OSError as e:
        raise NorbertError("cannot read %s: %s" % (path, reason(e))) from None
    except Exception as e:  # tf.errors.* for remote paths
        if type(e).__module__.startswith("tensorflow"):
            raise NorbertError("cannot read %s: %s" % (path, e)) from None
        raise


def check_writable_dir(path: str, flag: str) -> None:
    """Raises ``NorbertError`` unless ``path`` is, or can be made, a writable folder.

    Checked before a long job starts, and without creating anything: a job that fails at its
    first save, or leaves an empty folder behind on bad input, wastes the user's time.
    """
    if is_remote(path):
        return  # permissions on a bucket show only when writing; TensorFlow reports those
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise NorbertError("%s=%s: %s is a file, not a folder: choose another path"
                           % (flag, path, probe))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise NorbertError("%s=%s: no permission to write in %s: choose another path"
                           % (flag, path, probe))


def read_bytes(path: str, what: str = "file") -> bytes:
    """The whole file; a missing or unreadable one is a ``NorbertError`` naming it."""
    try:
        if is_remote(path):
            with _gfile().GFile(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (OSError, IOError) as e:
        raise NorbertError("cannot read %s %s: %s" % (what, path, reason(e))) from None
    except Exception as e:  # tf.errors.* for remote paths
        if type(e).__module__.startswith("tensorflow"):
            raise NorbertError("cannot read %s %s: %s" % (what, path, e)) from None
        raise


def glob(pattern: str) -> List[str]:
    """Sorted matches of one pattern; a plain path that exists matches itself."""
    if is_remote(pattern):
        return sorted(_gfile().glob(pattern))
    return sorted(_glob.glob(os.path.expanduser(pattern)))


def reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file (check the path)"
    if isinstance(error, IsADirectoryError):
        return "it is a directory, not a file"
    if isinstance(error, PermissionError):
        return "permission denied"
    return error.strerror or str(error)


def make_folders(path: str) -> List[str]:
    """``mkdir -p path`` for a local folder; returns the folders it created, outermost first.

    A run that fails removes them again with ``remove_folders``, so that bad input leaves
    nothing behind; a remote path (a bucket has no real folders) creates nothing.
    """
    if is_remote(path):
        return []
    created = []
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        created.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    created.reverse()
    for folder in created:
        try:
            os.mkdir(folder)
        except FileExistsError:
            pass  # made meanwhile by another process
        except OSError as e:
            remove_folders(created[:created.index(folder)])
            raise NorbertError("cannot create folder %s: %s" % (folder, reason(e))) from None
    return created


def remove_folders(created: List[str]) -> None:
    """Removes what ``make_folders`` created, innermost first, each only if still empty."""
    for folder in reversed(created):
        try:
            os.rmdir(folder)
        except OSError:
            return  # not empty (or gone): what is in it is not ours to delete


def temporary_name(path: str) -> str:
    """A sibling of ``path`` to write before renaming it to ``path``: ``<path>.tmp-<random>``.

    Random rather than the pid: two attempts at one file on different machines (a retried
    Beam bundle, say) may share a pid, and on shared storage they would write one file.
    """
    return "%s.tmp-%s" % (path, uuid.uuid4().hex)


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "wb") -> Iterator[IO]:
    """Opens a temporary sibling of ``path`` for writing; renames it to ``path`` on success.

    Readers never see a half-written file under the final name: on an exception (Ctrl-C
    included) the temporary file is removed and ``path`` is left as it was, and so are the
    missing folders above ``path``, which are created first and removed again on failure.
    """
    tmp = temporary_name(path)
    if is_remote(path):
        gfile = _gfile()
        try:
            with gfile.GFile(tmp, mode) as f:
                yield f
            gfile.rename(tmp, path, overwrite=True)
        except BaseException:
            if gfile.exists(tmp):
                gfile.remove(tmp)
            raise
        return
    created = make_folders(os.path.dirname(os.path.abspath(path)))
    try:
        f = open(tmp, mode)
    except OSError as e:
        remove_folders(created)
        raise NorbertError("cannot write %s: %s" % (path, reason(e))) from None
    try:
        with f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        remove_folders(created)
        raise


def expand_inputs(spec: str, flag: str = "--input_file") -> List[str]:
    """Files named by a comma-separated list of paths or globs, in the order given.

    Each pattern's matches are sorted; a pattern that matches nothing is a ``NorbertError``
    naming ``flag``, since a silently smaller corpus is worse than no run at all.
    """
    patterns = [p.strip() for p in spec.split(",") if p.strip()]
    if not patterns:
        raise NorbertError("%s is empty: give one or more files or globs, comma-separated" % flag)
    paths = []
    for pattern in patterns:
        matches = [m for m in glob(pattern) if not is_dir(m)]
        if not matches:
            raise NorbertError(
                "%s: no files match %r (check the path; quote globs so the shell leaves them)"
                % (flag, pattern)
            )
        paths.extend(matches)
    return paths


def is_dir(path: str) -> bool:
    return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


class LineReader:
    """Lines of text files (plain, ``.gz``, or remote), split on ``\\n`` only, without it.

    ``\\n`` only, as Google's reader does: universal newlines would also split at a lone ``\\r``
    and change which lines are blank. Stray bytes that are not UTF-8 become U+FFFD and are counted
    in ``bad_lines`` rather than stopping a long run; but a file that is binary (NUL bytes) or
    mostly not UTF-8 (another encoding) is a ``NorbertError``, since training on it would waste
    the run. Memory holds one line at a time.
    """

    # A file fails when at least this share of its first lines (or all of a short file) is bad,
    # and at least BAD_MIN lines: a stray byte or two is noise, not another encoding.
    BAD_SHARE = 0.1
    BAD_MIN = 3
    CHECK_AFTER = 1000  # lines: judged here, and at the end of a shorter file

    def __init__(self):
        self.bad_lines = 0  # lines that held bytes that were not UTF-8
        self.bytes_read = 0

    def lines(self, path: str) -> Iterator[str]:
        seen = bad = 0  # non-empty lines of this file, and the bad ones among them
        with open_binary(path) as f:
            for raw in f:
                self.bytes_read += len(raw)
                if raw.endswith(b"\n"):
                    raw = raw[:-1]
                if b"\x00" in raw:
                    raise NorbertError(
                        "%s is binary (NUL bytes on line %d), not text: give UTF-8 text files "
                        "with one sentence per line" % (path, seen + 1)
                    )
                if raw:
                    seen += 1
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    self.bad_lines += 1
                    bad += 1
                    line = raw.decode("utf-8", "replace")
                if seen == self.CHECK_AFTER:
                    self._judge(path, seen, bad)
                yield line
        if seen < self.CHECK_AFTER:
            self._judge(path, seen, bad)

    @classmethod
    def _judge(cls, path: str, seen: int, bad: int) -> None:
        if bad >= cls.BAD_MIN and bad >= cls.BAD_SHARE * seen:
            raise NorbertError(
                "%s is not UTF-8 (%d of its first %d lines are not): convert it first, for "
                "example with iconv -f latin1 -t utf-8" % (path, bad, seen)
            )

    @classmethod
    def check_sample(cls, path: str, data: bytes) -> None:
        """The same judgement on the first bytes of a file read some other way."""
        if b"\x00" in data:
            line = data.count(b"\n", 0, data.index(b"\x00")) + 1
            raise NorbertError(
                "%s is binary (NUL bytes on line %d), not text: give UTF-8 text files with one "
                "sentence per line" % (path, line)
            )
        lines = [line for line in data.split(b"\n")[: cls.CHECK_AFTER] if line]
        bad = 0
        for line in lines:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                bad += 1
        cls._judge(path, len(lines), bad)


def open_binary(path: str, decompress: bool = True) -> IO[bytes]:
    """The file's bytes: a ``.gz`` file's decompressed, unless ``decompress`` is False."""
    try:
        if is_remote(path):
            f = _gfile().GFile(path, "rb")
        else:
            f = open(path, "rb")
    except OSError as e:
        raise NorbertError("cannot read %s: %s" % (path, reason(e))) from None
    if decompress and path.endswith(".gz"):
        return _GzipOwning(f, path)
    return f


class _GzipOwning:
    """A gzip stream that closes the file under it too (``GzipFile(fileobj=...)`` does not).

    A truncated or damaged file (a download cut short) is a ``NorbertError`` naming it, raised
    where the damage is met, rather than gzip's bare ``EOFError`` or ``BadGzipFile``.
    """

    def __init__(self, raw: IO[bytes], path: str):
        import gzip

        self._raw = raw
        self._path = path
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")

    def __iter__(self):
        import zlib

        lines = iter(self._gz)
        while True:
            try:
                line = next(lines)
            except StopIteration:
                return
            except EOFError:
                raise NorbertError(
                    "%s is truncated (the gzip stream ends early): copy or compress it again"
                    % self._path
                ) from None
            except (OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
                raise NorbertError(
                    "%s is not a valid .gz file (%s): copy or compress it again"
                    % (self._path, e)
                ) from None
            yield line

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._gz.close()
        self._raw.close()
