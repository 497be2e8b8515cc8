"""Progress of a long loop on stderr: a bar on a terminal, log lines otherwise.

One helper for every tool (reading and learning a vocab, reading documents, building shards).
A terminal gets a tqdm bar, redrawn in place. Anything else (a log file, a CI console, a batch
job's captured stderr) gets an absl log line every ``interval`` seconds instead, with the count,
the rate and, when the total is known, the share done: a bar's carriage returns would fill a
file with half-drawn lines, and a line every few seconds is enough to see that a job lives.

tqdm's monitor thread is turned off: worker processes may be forked from this one, and a fork
copies no thread but keeps the locks other threads held. Updates from worker processes reach
the bar through the parent (``norbert.data.sharded`` sends them over a queue); the helper
itself lives in one process.
"""

import collections
import sys
import time
from typing import Callable, Optional

from absl import logging

BAR, LOG, OFF = "bar", "log", "off"
# Seconds between log lines: often enough to see progress, rarely enough to keep logs short.
LOG_INTERVAL = 15.0


def choose_mode(enabled: bool, stream) -> str:
    """``BAR`` for a terminal, ``LOG`` for anything else, ``OFF`` when not ``enabled``."""
    if not enabled:
        return OFF
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        tty = False
    return BAR if tty else LOG


def _amount(n: float, unit: str) -> str:
    """``n`` with its unit, bytes in decimal multiples: "3.2 MB", "1500 lines", "2.5 lines"."""
    if unit == "B":
        for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if abs(n) >= scale:
                return "%.1f %sB" % (n / scale, prefix)
        return "%d B" % n
    if abs(n) >= 10 or n == int(n):
        return "%d %s" % (round(n), unit)
    return "%.1f %s" % (n, unit)


class Progress:
    """Counts ``unit``s of work towards ``total`` (None while unknown), shown as ``desc``.

    ``update(n, **counts)`` adds ``n`` units and to named side counts (``lines=12``), which are
    shown after the main count. ``initial`` is work done before this run (a resumed build): it
    counts towards the share done, not the rate. With ``enabled=False`` every call does
    nothing, so callers need no ``if``. A context manager: leaving it closes the bar, or logs a
    last line with the totals (none when an error leaves it).

    ``stream`` (default: ``sys.stderr`` when created) decides the mode and takes the bar;
    ``interval`` and ``clock`` set the log lines' pace.
    """

    def __init__(
        self,
        desc: str,
        unit: str = "it",
        total: Optional[int] = None,
        initial: int = 0,
        enabled: bool = True,
        interval: float = LOG_INTERVAL,
        stream=None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.desc = desc
        self.unit = unit
        self.total = total
        self.initial = initial
        self.count = initial
        self.counts = collections.OrderedDict()  # name -> side count, in the order first seen
        self.interval = interval
        self._clock = clock
        self._start = self._last = clock()
        stream = sys.stderr if stream is None else stream
        self.mode = choose_mode(enabled, stream)
        self._bar = None
        if self.mode == BAR:
            import tqdm

            tqdm.tqdm.monitor_interval = 0  # no monitor thread: see the module docstring
            self._bar = tqdm.tqdm(
                desc=desc, total=total, initial=initial, unit=unit, unit_scale=True,
                unit_divisor=1000, file=stream, dynamic_ncols=True, mininterval=0.5,
            )

    @property
    def active(self) -> bool:
        """Whether anything is shown: callers can skip the work of counting when not."""
        return self.mode != OFF

    def set_total(self, total: Optional[int]) -> None:
        if self.mode == OFF or total == self.total:
            return
        self.total = total
        if self._bar is not None:
            self._bar.total = total

    def update(self, n: int = 1, **counts: int) -> None:
        if self.mode == OFF:
            return
        self.count += n
        if counts:
            for name, k in counts.items():
                self.counts[name] = self.counts.get(name, 0) + k
            if self._bar is not None:
                self._bar.set_postfix_str(self._side_counts(), refresh=False)
        if self._bar is not None:
            self._bar.update(n)
            return
        now = self._clock()
        if now - self._last >= self.interval:
            self._last = now
            logging.info("%s", self.line(now))

    def line(self, now: Optional[float] = None) -> str:
        """The log line: "reading: 3.2 MB of 10.0 MB (32.0%), 1.1 MB/s, 5000 lines"."""
        now = self._clock() if now is None else now
        if not self.total:
            done = _amount(self.count, self.unit)
        elif self.unit == "B":  # each with its own multiple: "800.0 kB of 1.2 MB"
            done = "%s of %s" % (_amount(self.count, "B"), _amount(self.total, "B"))
        else:
            done = "%d of %s" % (self.count, _amount(self.total, self.unit))
        text = "%s: %s" % (self.desc, done)
        if self.total:
            text += " (%.1f%%)" % (100.0 * self.count / self.total)
        elapsed = now - self._start
        if elapsed > 0:
            text += ", %s/s" % _amount((self.count - self.initial) / elapsed, self.unit)
        if self.counts:
            text += ", " + self._side_counts()
        return text

    def _side_counts(self) -> str:
        return ", ".join("%d %s" % (k, name) for name, k in self.counts.items())

    def close(self, log_last: bool = True) -> None:
        """Ends the bar, or logs the last line (with the totals) unless ``log_last`` is False;
        once."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == LOG and log_last:
            logging.info("%s (done)", self.line())
        self.mode = OFF

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # After an error, no last line: the error is what the run ends with (one line from
        # the scripts), and the totals of an unfinished loop would read as a success.
        self.close(log_last=exc_type is None)
