"""How worker processes start: one policy for every pool.

Fork starts a worker at once, with everything the parent loaded (the tokenizer, the vocab)
already in memory. But a fork copies only the calling thread, and a lock that another thread
held stays locked forever in the child. TensorFlow runs threads of its own once imported (a
``gs://`` path imports it for file access), so a child forked after that can deadlock; spawn
starts a fresh interpreter instead, which re-imports norbert (not TensorFlow, unless the work
needs it). Off Linux spawn is the only safe choice: macOS system libraries are not fork-safe
and Windows has no fork.
"""

import multiprocessing
import sys

FORK, SPAWN = "fork", "spawn"


def start_method() -> str:
    """``"spawn"`` when TensorFlow is imported in this process or off Linux, else ``"fork"``."""
    if "tensorflow" in sys.modules:
        return SPAWN
    if sys.platform.startswith("linux"):
        return FORK
    return SPAWN


def pool_context():
    """The ``multiprocessing`` context that every worker pool should start its processes from,
    as ``start_method`` chooses: decided when the pool starts, since TensorFlow may have been
    imported since this module was."""
    return multiprocessing.get_context(start_method())
