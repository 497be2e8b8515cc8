"""File access for local paths and, through TensorFlow's ``tf.io.gfile``, ``gs://`` and friends.

Local files never import TensorFlow (it takes seconds and the data tools do not need it).
"""

import contextlib
import glob as _glob
import json
import os
import socket
import sys
import time
from typing import IO, Iterator, List, Optional

from norbert.errors import NorbertError


def is_remote(path: str) -> bool:
    """True for a URL-style path (``gs://bucket/x``) that only ``tf.io.gfile`` can open."""
    return "://" in path


def _gfile():
    import tensorflow as tf  # deferred: only remote paths pay for it

    return tf.io.gfile


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def size(path: str) -> int:
    """The file's size in bytes; a missing one is a ``NorbertError`` naming it."""
    try:
        return _gfile().stat(path).length if is_remote(path) else os.path.getsize(path)
    except OSError as e:
        raise NorbertError("cannot read %s: %s" % (path, _reason(e))) from None
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
        raise NorbertError("%s=%s: %s is a file, not a folder: choose another path" % (flag, path, probe))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise NorbertError("%s=%s: no permission to write in %s: choose another path" % (flag, path, probe))


def read_bytes(path: str, what: str = "file") -> bytes:
    """The whole file; a missing or unreadable one is a ``NorbertError`` naming it."""
    try:
        if is_remote(path):
            with _gfile().GFile(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (OSError, IOError) as e:
        raise NorbertError("cannot read %s %s: %s" % (what, path, _reason(e))) from None
    except Exception as e:  # tf.errors.* for remote paths
        if type(e).__module__.startswith("tensorflow"):
            raise NorbertError("cannot read %s %s: %s" % (what, path, e)) from None
        raise


def glob(pattern: str) -> List[str]:
    """Sorted matches of one pattern; a plain path that exists matches itself."""
    if is_remote(pattern):
        return sorted(_gfile().glob(pattern))
    return sorted(_glob.glob(os.path.expanduser(pattern)))


def _reason(error: OSError) -> str:
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
            raise NorbertError("cannot create folder %s: %s" % (folder, _reason(e))) from None
    return created


def remove_folders(created: List[str]) -> None:
    """Removes what ``make_folders`` created, innermost first, each only if still empty."""
    for folder in reversed(created):
        try:
            os.rmdir(folder)
        except OSError:
            return  # not empty (or gone): what is in it is not ours to delete


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "wb") -> Iterator[IO]:
    """Opens a temporary sibling of ``path`` for writing; renames it to ``path`` on success.

    Readers never see a half-written file under the final name: on an exception (Ctrl-C
    included) the temporary file is removed and ``path`` is left as it was, and so are the
    missing folders above ``path``, which are created first and removed again on failure.
    """
    tmp = "%s.tmp-%d" % (path, os.getpid())
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
        raise NorbertError("cannot write %s: %s" % (path, _reason(e))) from None
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
        matches = [m for m in glob(pattern) if not _is_dir(m)]
        if not matches:
            raise NorbertError(
                "%s: no files match %r (check the path; quote globs so the shell leaves them)"
                % (flag, pattern)
            )
        paths.extend(matches)
    return paths


def _is_dir(path: str) -> bool:
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


def open_binary(path: str) -> IO[bytes]:
    try:
        if is_remote(path):
            f = _gfile().GFile(path, "rb")
        else:
            f = open(path, "rb")
    except OSError as e:
        raise NorbertError("cannot read %s: %s" % (path, _reason(e))) from None
    if path.endswith(".gz"):
        import gzip

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


# -- one run per output folder -------------------------------------------------------------------

LOCK_NAME = ".norbert-run.lock"


def _process_identity(pid: int) -> Optional[str]:
    """Boot id and start time of process ``pid`` on this machine (Linux), or None if unknown.

    A pid alone is not enough to tell a live run from a dead one: after a reboot (a preempted
    VM) or a long time, another process may have the dead run's pid.
    """
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        # Field 22 is the start time; the name before it (field 2) may hold spaces and ')'.
        return "%s/%s" % (boot, stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _lock_is_stale(holder: dict) -> bool:
    """True when ``holder``'s process is known to be gone: on this host, and not running."""
    if holder.get("host") != socket.gethostname():
        return False  # another machine's process: no way to tell, so it counts as live
    pid = holder.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False  # exists, another user's
    recorded, now = holder.get("process"), _process_identity(pid)
    return bool(recorded and now and recorded != now)  # the pid now belongs to another process


def _read_lock(path: str) -> Optional[dict]:
    """The lock's content; None when it is gone; {} when it is not a lock norbert wrote."""
    for _ in range(20):  # a lock being written this instant is empty for a moment
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        if data:
            break
        time.sleep(0.05)
    try:
        holder = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}


@contextlib.contextmanager
def exclusive_folder(path: str, flag: str = "--output_dir", what: str = "training run"):
    """Holds ``path``/.norbert-run.lock (this host and pid) while the block runs.

    A second run into the same folder stops at once with a ``NorbertError`` naming the holder,
    rather than both writing checkpoints over each other. A lock left by a process of this host
    that no longer runs (killed with -9, or the machine restarted) is taken over with a
    warning. The lock is removed when the block ends, on error and Ctrl-C too. The folder must
    exist. Remote folders are not locked: buckets have no exclusive create.
    """
    if is_remote(path):
        yield None
        return
    from absl import logging

    lock = os.path.join(path, LOCK_NAME)
    mine = {"host": socket.gethostname(), "pid": os.getpid(),
            "process": _process_identity(os.getpid()),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
    for _ in range(10):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read_lock(lock)
            if holder is None:
                continue  # released meanwhile: try again
            if not holder or not _lock_is_stale(holder):
                raise NorbertError(_in_use_message(flag, path, lock, holder, what)) from None
            # Moved aside under a name of our own, so that of two runs taking over the same
            # stale lock only one succeeds; a lock that is not the stale one read is put back.
            aside = "%s.stale-%d" % (lock, os.getpid())
            try:
                os.rename(lock, aside)
            except FileNotFoundError:
                continue
            if _read_lock(aside) != holder:
                try:
                    os.link(aside, lock)
                except OSError:
                    pass
                os.remove(aside)
                continue
            os.remove(aside)
            logging.warning("took over the lock of %s: pid %s on this host (%s) no longer runs",
                            path, holder.get("pid"), holder.get("host"))
            continue
        except OSError as e:
            raise NorbertError("%s=%s: cannot create the lock file %s: %s"
                               % (flag, path, lock, _reason(e))) from None
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
        break
    else:
        raise NorbertError("%s=%s: could not take the lock file %s (other runs keep taking it): "
                           "start one run at a time" % (flag, path, lock))
    try:
        yield lock
    finally:
        if _read_lock(lock) == mine:  # still ours (not taken over by mistake)
            try:
                os.remove(lock)
            except OSError:
                pass


def _in_use_message(flag: str, path: str, lock: str, holder: dict, what: str) -> str:
    if not holder:
        return ("%s=%s: the lock file %s is there but unreadable: if no %s uses the folder, "
                "delete it" % (flag, path, lock, what))
    return ("%s=%s is in use by another %s (pid %s on host %s, started %s): wait for it to end "
            "or choose another %s; if that run is gone, delete the lock file %s"
            % (flag, path, what, holder.get("pid"), holder.get("host"), holder.get("started"),
               flag, lock))
