"""One training run per output folder: a lock file holding the run's host and process.

Two runs writing checkpoints into the same folder overwrite each other's files silently; the
lock makes the second one stop at once with a message naming the first.

A local folder's lock is created exclusively (``O_EXCL``) and lives as long as the run. A
remote folder (``gs://``, through ``tf.io.gfile``) has no exclusive create, so its lock is a
lease: the run writes it, reads it back after a short settle time to see that no other run
wrote over it, and renews it while it runs; a lease not renewed for a while (a preempted VM
that never came back) is taken over.
"""

import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from typing import Optional

from norbert.errors import NorbertError
from norbert.fileio import atomic_output, is_remote, reason


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
    return _parse(data)


def _parse(data: bytes) -> dict:
    """A lock file's content; {} when it is not a lock norbert wrote."""
    try:
        holder = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}


@contextlib.contextmanager
def exclusive_folder(path: str, flag: str = "--output_dir", what: str = "training run", *,
                     renew_secs: float = 60.0, stale_secs: float = 600.0,
                     settle_secs: float = 2.0):
    """Holds ``path``/.norbert-run.lock (this host and pid) while the block runs; yields its path.

    A second run into the same folder stops at once with a ``NorbertError`` naming the holder,
    rather than both writing checkpoints over each other. A lock left by a process of this host
    that no longer runs (killed with -9, or the machine restarted) is taken over with a
    warning. The lock is removed when the block ends, on error and Ctrl-C too. A local folder
    must exist.

    A remote folder's lock is a lease (``_leased_folder``): renewed every ``renew_secs`` while
    the block runs, taken over once not renewed for ``stale_secs``; ``settle_secs`` is the wait
    before reading a new lease back. Local locks use none of the three.
    """
    if not 0 < renew_secs <= stale_secs / 2 or settle_secs < 0:
        raise ValueError("exclusive_folder needs 0 < renew_secs <= stale_secs / 2 and "
                         "settle_secs >= 0; got %s, %s, %s" % (renew_secs, stale_secs, settle_secs))
    if is_remote(path):
        with _leased_folder(path, flag, what, renew_secs, stale_secs, settle_secs) as lock:
            yield lock
        return
    with _local_folder(path, flag, what) as lock:
        yield lock


@contextlib.contextmanager
def _local_folder(path: str, flag: str, what: str):
    """The lock of a local folder: created with O_EXCL, so that of two runs only one has it."""
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
                               % (flag, path, lock, reason(e))) from None
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


def _in_use_message(flag: str, path: str, lock: str, holder: dict, what: str,
                    note: str = "") -> str:
    if not holder:
        return ("%s=%s: the lock file %s is there but unreadable: if no %s uses the folder, "
                "delete it" % (flag, path, lock, what))
    return ("%s=%s is in use by another %s (pid %s on host %s, started %s): wait for it to end "
            "or choose another %s; if that run is gone, delete the lock file %s%s"
            % (flag, path, what, holder.get("pid"), holder.get("host"), holder.get("started"),
               flag, lock, note))


# --- Remote folders: a lease ---------------------------------------------------------------
#
# A bucket has neither exclusive create nor flock, so the lock is a lease written over whatever
# is there, and settled by reading it back: GCS is strongly consistent for read-after-write,
# overwrites included (as are S3, HDFS and ram://), so once two runs' writes have both
# completed, both read the same last one, and only the run whose token it holds goes on.
# ``settle_secs`` must outlast the time between a rival's read (it saw no live lease) and the
# end of its write, which on GCS is well under a second: then both writes are done before
# either run reads back. The one window left is a holder that wakes after ``stale_secs``
# without a renewal, just as another run takes its lease over: its next renewal sees the
# other's token and logs an error rather than write over it.


def _gfile():
    import tensorflow as tf  # deferred: only remote folders pay for it

    return tf.io.gfile


def _tf_errors():
    import tensorflow as tf

    return tf.errors


def _read_lease(lock: str) -> Optional[dict]:
    """The lease in ``lock``; None when there is none; {} when it is not one norbert wrote.

    Other failures (no permission, the network) propagate as ``tf.errors.OpError``.
    """
    try:
        with _gfile().GFile(lock, "rb") as f:
            return _parse(f.read())
    except _tf_errors().NotFoundError:
        return None


def _write_lease(lock: str, lease: dict) -> None:
    # Written beside and renamed over the lock: a reader sees the old lease or the new one,
    # never a part, on every store (some, ram:// for one, write over a file in place).
    with atomic_output(lock) as f:
        f.write(json.dumps(lease).encode("utf-8"))


def _mtime(path: str) -> Optional[float]:
    """The store's modification time of ``path`` in seconds; None where the store keeps none."""
    try:
        nsec = _gfile().stat(path).mtime_nsec
    except _tf_errors().OpError:
        return None
    return nsec / 1e9 if nsec and nsec > 0 else None


def _lease_age(lock: str, holder: dict, token: str) -> Optional[float]:
    """Seconds since ``holder``'s lease in ``lock`` was last renewed; None when it cannot be told.

    Where the store keeps modification times (GCS keeps the object's update time), the age is
    measured on the store's clock alone: the lock's mtime against that of a probe written now.
    Neither the holder's clock nor this machine's enters, so a VM whose clock is off can neither
    take a live lease nor keep a dead one. The holder's "renewed" is never compared with the
    file's mtime: that difference is the clocks' skew, not an age. Where the store keeps no
    times (``ram://`` reports 0), "renewed" is compared with this machine's clock: cloud VMs
    keep NTP time to within seconds, small against a stale limit of minutes.
    """
    renewed_at = _mtime(lock)
    if renewed_at is not None:
        probe = "%s.clock-%s" % (lock, token)
        _write_lease(probe, {})
        try:
            now = _mtime(probe)
        finally:
            try:
                _gfile().remove(probe)
            except _tf_errors().OpError:
                pass  # a probe left behind harms nothing
        if now is not None:
            return now - renewed_at
    renewed = holder.get("renewed")
    if not isinstance(renewed, (int, float)) or isinstance(renewed, bool):
        return None
    return time.time() - renewed


def _abandoned(lock: str, holder: dict, token: str, stale_secs: float) -> Optional[str]:
    """Why ``holder``'s lease may be taken over, or None when it is live (or cannot be told).

    A lease of a process of this host that no longer runs is stale at once (as a local lock
    is); any other, a running process's too, is stale once not renewed for ``stale_secs``: a
    run whose renewals stopped that long ago (hung, or cut off from the bucket) is not one to
    wait for.
    """
    if not holder:
        return None
    if _lock_is_stale(holder):
        return "pid %s on this host (%s) no longer runs" % (holder.get("pid"), holder.get("host"))
    age = _lease_age(lock, holder, token)
    if age is None or age < stale_secs:
        return None
    return "pid %s on host %s (started %s) has not renewed it for %d s" % (
        holder.get("pid"), holder.get("host"), holder.get("started"), age)


def _settle(seconds: float) -> None:
    time.sleep(seconds)


def _take_lease(path: str, flag: str, what: str, lock: str, lease: dict, stale_secs: float,
                settle_secs: float) -> None:
    """Writes ``lease`` into ``lock`` unless a live one is there; raises unless it stays there."""
    from absl import logging

    note = "; a lock not renewed for %g s is taken over" % stale_secs
    holder = _read_lease(lock)
    why = None
    if holder is not None:
        why = _abandoned(lock, holder, lease["token"], stale_secs)
        if why is None:
            raise NorbertError(_in_use_message(flag, path, lock, holder, what, note))
    _write_lease(lock, dict(lease, renewed=time.time()))
    _settle(settle_secs)
    there = _read_lease(lock)
    if there is None:
        raise NorbertError("%s=%s: could not take the lock file %s (another run removed it): "
                           "start one run at a time" % (flag, path, lock))
    if there.get("token") != lease["token"]:  # another run wrote after us: it has the lock
        raise NorbertError(_in_use_message(flag, path, lock, there, what, note))
    if why is not None:
        logging.warning("took over the lock of %s: %s", path, why)


def _renew(lock: str, lease: dict, every: float, stop: threading.Event,
           guard: threading.Lock) -> None:
    """Rewrites the lease's "renewed" every ``every`` seconds until ``stop`` is set.

    A lease that holds another run's token (or is gone) is no longer this run's: it is left
    alone, with an error in the log. A failed write is tried again at the next period.
    """
    from absl import logging

    while not stop.wait(every):
        with guard:  # the block's end sets ``stop`` under it: no renewal after the removal
            if stop.is_set():
                return
            try:
                there = _read_lease(lock)
                if there is None or there.get("token") != lease["token"]:
                    logging.error("lost the lock %s to %s: another run may be writing into "
                                  "this folder", lock, _holder_name(there))
                    return
                _write_lease(lock, dict(lease, renewed=time.time()))
            except Exception as e:  # noqa: BLE001 - whatever failed, this thread must go on
                logging.warning("could not renew the lock %s (trying again in %s s): %s",
                                lock, every, e)


def _holder_name(holder: Optional[dict]) -> str:
    if holder is None:
        return "nobody (the lock file was removed)"
    return "pid %s on host %s" % (holder.get("pid"), holder.get("host"))


@contextlib.contextmanager
def _leased_folder(path: str, flag: str, what: str, renew_secs: float, stale_secs: float,
                   settle_secs: float):
    """The lock of a remote folder: a lease, renewed by a daemon thread while the block runs."""
    from absl import logging

    lock = path.rstrip("/") + "/" + LOCK_NAME
    lease = {"host": socket.gethostname(), "pid": os.getpid(),
             "process": _process_identity(os.getpid()), "token": uuid.uuid4().hex,
             "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
    try:
        _take_lease(path, flag, what, lock, lease, stale_secs, settle_secs)
    except _tf_errors().OpError as e:
        raise NorbertError("%s=%s: cannot use the lock file %s: %s"
                           % (flag, path, lock, e.message)) from None
    stop, guard = threading.Event(), threading.Lock()
    renewal = threading.Thread(target=_renew, args=(lock, lease, renew_secs, stop, guard),
                               name="norbert-run-lock", daemon=True)
    renewal.start()
    try:
        yield lock
    finally:
        with guard:
            stop.set()
        renewal.join(timeout=1.0)  # no renewal is under way (the guard): its wait ends now
        try:
            there = _read_lease(lock)
            if there is not None and there.get("token") == lease["token"]:
                _gfile().remove(lock)
        except _tf_errors().OpError as e:
            logging.warning("could not remove the lock %s (it lapses after %d s): %s",
                            lock, stale_secs, e.message)
