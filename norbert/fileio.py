"""File access for local paths and, through TensorFlow's ``tf.io.gfile``, ``gs://`` and friends.

Local files never import TensorFlow (it takes seconds and the data tools do not need it).
"""

import glob as _glob
import os
from typing import List

from norbert.errors import NorbertError


def is_remote(path: str) -> bool:
    """True for a URL-style path (``gs://bucket/x``) that only ``tf.io.gfile`` can open."""
    return "://" in path


def _gfile():
    import tensorflow as tf  # deferred: only remote paths pay for it

    return tf.io.gfile


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


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
