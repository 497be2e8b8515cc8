"""The run lock in one process: held, refused, released, taken over when stale.

Runs that meet the lock as users would (subprocesses) are in test_crash_recovery.py.
"""

import json
import os
import socket

import pytest

from norbert import NorbertError
from norbert.training.run_lock import LOCK_NAME, exclusive_folder


def test_lock_rules(tmp_path):
    """In one process: held, refused, released on error, and a reused pid seen through."""
    lock = tmp_path / LOCK_NAME
    with exclusive_folder(str(tmp_path)):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(NorbertError, match="is in use by another training run"):
            with exclusive_folder(str(tmp_path)):
                pass
        assert lock.exists()  # the refused one left the holder's lock alone
    assert not lock.exists()
    with pytest.raises(RuntimeError):
        with exclusive_folder(str(tmp_path)):
            raise RuntimeError("a failing run")
    assert not lock.exists()
    # A live pid that belongs to another process than the one that wrote the lock (the
    # machine restarted, and the pid was given again): stale.
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                "process": "another-boot/123", "started": "before"}))
    with exclusive_folder(str(tmp_path)):
        assert json.loads(lock.read_text())["started"] != "before"
    # Another machine's lock, and one that is not norbert's: refused, left in place.
    for content in ('{"host": "elsewhere", "pid": 1}', "garbage"):
        lock.write_text(content)
        with pytest.raises(NorbertError, match="delete"):
            with exclusive_folder(str(tmp_path)):
                pass
        assert lock.read_text() == content
