"""Stop signals: SIGTERM (a preemption, a scheduler's time limit) and SIGINT (Ctrl-C).

One mechanism for the whole run. The handler only records the signal: it never raises, so a
signal that lands while TensorFlow's C code calls back into Python (tf.data's structure checks
import modules) cannot surface there as a ``SystemError``. The run acts on it at safe points:
the training loop after each step (saves, then stops; with replicas every worker agrees to stop
after the same step), evaluation between batches, and the phases before them through
``check`` (``KeyboardInterrupt`` with the signal's name). A second signal raises at once: a
user who presses Ctrl-C twice wants out now.

A step blocked in a collective (a worker waiting in the all-reduce for one that is gone) is
inside TensorFlow until it returns: the signal is acted on when it does, at the latest after
``--worker_timeout_secs``.
"""

import signal
from typing import Optional

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """A context manager that records SIGTERM and SIGINT while it is open.

    ``received`` is the first signal's name ("SIGTERM", "SIGINT") or None. One per run: a
    function that runs under one (the loop inside a pretraining run) is handed it rather than
    opening another. Outside the main thread signals are left alone.
    """

    def __init__(self, received: Optional[str] = None):
        self.received = received
        self._previous = {}

    def __enter__(self) -> "StopSignals":
        for sig in SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:  # the second one: give up at once
            raise KeyboardInterrupt(name)
        self.received = name

    def check(self) -> None:
        """At a safe point outside the training loop: ``KeyboardInterrupt`` (the signal's
        name) when a stop signal came, so that the run ends through its ``finally`` blocks."""
        if self.received is not None:
            raise KeyboardInterrupt(self.received)
