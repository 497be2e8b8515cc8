"""One training run per output folder: a lock file holding the run's host and process.

Two runs writing checkpoints into the same folder overwrite each other's files silently; the
lock makes the second one stop at once with a message naming the first.
"""

import contextlib
import json
import os
import socket
import sys
import time
from typing import Optional

from norbert.errors import NorbertError
from norbert.fileio import is_remote, reason


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


def _in_use_message(flag: str, path: str, lock: str, holder: dict, what: str) -> str:
    if not holder:
        return ("%s=%s: the lock file %s is there but unreadable: if no %s uses the folder, "
                "delete it" % (flag, path, lock, what))
    return ("%s=%s is in use by another %s (pid %s on host %s, started %s): wait for it to end "
            "or choose another %s; if that run is gone, delete the lock file %s"
            % (flag, path, what, holder.get("pid"), holder.get("host"), holder.get("started"),
               flag, lock))
