"""The run lock in one process: held, refused, released, taken over when stale; for local
folders (an exclusive create) and remote ones (a lease, on ``ram://``).

Runs that meet the lock as users would (subprocesses) are in test_crash_recovery.py.
"""

import json
import logging
import os
import socket
import subprocess
import sys
import time

import pytest

from norbert import NorbertError
from norbert.fileio import atomic_output
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


# --- Remote folders: a lease, on TensorFlow's in-memory file system as the bucket -----------

SHORT = dict(renew_secs=0.1, stale_secs=0.5, settle_secs=0.05)


def _ram(name):
    return "ram://norbert-run-lock/%s" % name


def _lease(lock):
    import tensorflow as tf

    with tf.io.gfile.GFile(lock, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def _write(lock, content):
    with atomic_output(lock) as f:  # ram:// writes over a file in place: renamed over it
        f.write(content if isinstance(content, bytes) else json.dumps(content).encode("utf-8"))


def _exists(lock):
    import tensorflow as tf

    return tf.io.gfile.exists(lock)


def test_a_remote_folder_is_held_refused_and_released():
    folder = _ram("held")
    lock = folder + "/" + LOCK_NAME
    with exclusive_folder(folder, **SHORT) as held:
        assert held == lock
        lease = _lease(lock)
        assert (lease["host"], lease["pid"]) == (socket.gethostname(), os.getpid())
        assert len(lease["token"]) == 32 and isinstance(lease["renewed"], float)
        with pytest.raises(NorbertError) as refused:
            with exclusive_folder(folder, **SHORT):
                pass
        message = str(refused.value)
        assert "\n" not in message
        assert message == (
            "--output_dir=%s is in use by another training run (pid %d on host %s, started %s): "
            "wait for it to end or choose another --output_dir; if that run is gone, delete the "
            "lock file %s; a lock not renewed for 0.5 s is taken over"
            % (folder, os.getpid(), socket.gethostname(), lease["started"], lock))
        assert _lease(lock)["token"] == lease["token"]  # the refused one left it alone
    assert not _exists(lock)
    with pytest.raises(RuntimeError):
        with exclusive_folder(folder, **SHORT):
            assert _exists(lock)
            raise RuntimeError("a failing run")
    assert not _exists(lock)
    with pytest.raises(KeyboardInterrupt):
        with exclusive_folder(folder, **SHORT):
            raise KeyboardInterrupt
    assert not _exists(lock)


def test_another_hosts_fresh_lease_and_a_foreign_file_are_refused_and_left():
    folder = _ram("foreign")
    lock = folder + "/" + LOCK_NAME
    fresh = {"host": "elsewhere", "pid": 1, "token": "theirs", "started": "earlier",
             "renewed": time.time()}
    for content, match in [(fresh, "pid 1 on host elsewhere, started earlier"),
                           (b"garbage", "unreadable: if no training run uses the folder")]:
        _write(lock, content)
        with pytest.raises(NorbertError, match=match):
            with exclusive_folder(folder, flag="--out", **SHORT):
                pass
        assert _exists(lock)
    _write(lock, dict(fresh, renewed=None))  # a lease whose age cannot be told: live
    with pytest.raises(NorbertError, match="in use"):
        with exclusive_folder(folder, **SHORT):
            pass


def test_a_stale_lease_is_taken_over_with_a_warning(caplog):
    folder = _ram("stale")
    lock = folder + "/" + LOCK_NAME
    _write(lock, {"host": "elsewhere", "pid": 77, "token": "theirs", "started": "yesterday",
                  "renewed": time.time() - 3600})
    with caplog.at_level(logging.WARNING):
        with exclusive_folder(folder, settle_secs=0.05):  # an hour is past the 10 minutes
            assert _lease(lock)["token"] != "theirs"
    assert not _exists(lock)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(
        "took over the lock of %s: pid 77 on host elsewhere (started yesterday) has not "
        "renewed it for 36" % folder)
    # A lease of this host whose process no longer runs is stale at once, however fresh.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _write(lock, {"host": socket.gethostname(), "pid": gone.pid, "token": "dead",
                  "started": "now", "renewed": time.time()})
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        with exclusive_folder(folder, **SHORT):
            pass
    assert "pid %d on this host" % gone.pid in caplog.text and "no longer runs" in caplog.text


def test_a_running_block_keeps_its_lease_live_past_the_stale_limit():
    folder = _ram("renewed")
    lock = folder + "/" + LOCK_NAME
    with exclusive_folder(folder, **SHORT):
        first = _lease(lock)["renewed"]
        time.sleep(1.0)  # twice the stale limit
        lease = _lease(lock)
        assert lease["renewed"] > first + 0.5
        with pytest.raises(NorbertError, match="in use by another training run"):
            with exclusive_folder(folder, **SHORT):
                pass
        assert _lease(lock)["token"] == lease["token"]
    assert not _exists(lock)
    # Without renewal (a lease written by hand, then left), the same wait makes it stale.
    _write(lock, dict(lease, host="elsewhere", token="left", renewed=time.time()))
    time.sleep(0.6)
    with exclusive_folder(folder, **SHORT):
        assert _lease(lock)["token"] != "left"


def test_of_two_runs_writing_at_once_only_the_last_writer_holds(monkeypatch):
    from norbert.training import run_lock

    folder = _ram("race")
    lock = folder + "/" + LOCK_NAME
    rival = {"host": "elsewhere", "pid": 9, "token": "rival", "started": "the same moment",
             "renewed": time.time()}
    # The rival's write lands while this run settles: this run must see it and give way.
    monkeypatch.setattr(run_lock, "_settle", lambda seconds: _write(lock, rival))
    with pytest.raises(NorbertError, match="pid 9 on host elsewhere, started the same moment"):
        with exclusive_folder(folder, **SHORT):
            pytest.fail("both runs hold the lock")
    assert _lease(lock)["token"] == "rival"  # the holder's lease stays
    # A run that loses its lease while it runs leaves the new holder's alone.
    monkeypatch.setattr(run_lock, "_settle", time.sleep)
    _write(lock, dict(rival, renewed=time.time() - 3600))
    with exclusive_folder(folder, **SHORT):
        _write(lock, dict(rival, token="taker", renewed=time.time()))
        time.sleep(0.3)
        assert _lease(lock)["token"] == "taker"  # not renewed over
    assert _lease(lock)["token"] == "taker"  # nor removed


def test_the_age_is_the_stores_when_it_keeps_modification_times(monkeypatch):
    """The lock's mtime against a probe's, not the holder's clock nor this machine's."""
    import tensorflow as tf

    from norbert.training import run_lock

    folder = _ram("clock")
    lock = folder + "/" + LOCK_NAME
    real_stat = tf.io.gfile.stat
    clock = {"lock": 1000.0, "probe": 1000.0 + 700}  # the store says: 700 s since the renewal

    def stat(path):
        kind = "probe" if ".clock-" in path else "lock"
        return type("Stat", (), {"length": real_stat(path).length,
                                 "mtime_nsec": int(clock[kind] * 1e9)})()

    monkeypatch.setattr(tf.io.gfile, "stat", stat)
    holder = {"host": "elsewhere", "pid": 5, "token": "t", "renewed": time.time()}
    _write(lock, holder)
    assert 699 < run_lock._lease_age(lock, holder, "mine") < 701  # "renewed" says: just now
    assert not tf.io.gfile.glob(lock + ".clock-*")  # the probe is gone
    clock["probe"] = 1000.0 + 5  # and the other way: "renewed" long ago, the store says 5 s
    old = dict(holder, renewed=time.time() - 3600)
    _write(lock, old)
    with pytest.raises(NorbertError, match="in use"):
        with exclusive_folder(folder):
            pass
    tf.io.gfile.remove(lock)


def test_the_periods_must_make_sense():
    for periods in [dict(renew_secs=0), dict(renew_secs=60, stale_secs=100),
                    dict(settle_secs=-1)]:
        with pytest.raises(ValueError, match="renew_secs"):
            with exclusive_folder(_ram("periods"), **periods):
                pass
