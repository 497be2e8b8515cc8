"""The one progress helper: a bar on a terminal only, absl log lines at a steady pace otherwise,
silence when disabled, and no tqdm monitor thread."""

import io
import logging
import sys
import threading

import pytest

from norbert import progress
from norbert.progress import Progress


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def absl_lines(caplog):
    """The messages absl logs from here on, at INFO and above."""
    caplog.set_level(logging.INFO, logger="absl")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "absl"]


def test_log_lines_come_every_interval_with_count_rate_and_share(absl_lines):
    clock = FakeClock()
    stream = io.StringIO()
    bar = Progress("reading", "B", total=10_000_000, interval=10.0, stream=stream, clock=clock)
    assert bar.mode == progress.LOG
    bar.update(1_000_000, lines=10)
    clock.now += 9.0
    bar.update(1_000_000, lines=10)
    assert absl_lines() == []  # not 10 s yet
    clock.now += 1.0
    bar.update(2_000_000, lines=30)
    assert absl_lines() == ["reading: 4.0 MB of 10.0 MB (40.0%), 400.0 kB/s, 50 lines"]
    clock.now += 5.0
    bar.update(1_000_000)
    assert len(absl_lines()) == 1  # the next one is due 10 s after the last
    clock.now += 5.0
    bar.update(1_000_000)
    assert absl_lines()[-1] == "reading: 6.0 MB of 10.0 MB (60.0%), 300.0 kB/s, 50 lines"
    bar.close()
    assert absl_lines()[-1] == "reading: 6.0 MB of 10.0 MB (60.0%), 300.0 kB/s, 50 lines (done)"
    bar.update(5)  # closed: ignored
    bar.close()
    assert len(absl_lines()) == 3
    assert stream.getvalue() == ""  # the log, not the stream


def test_an_unknown_total_gives_count_and_rate_and_can_be_set_later(absl_lines):
    clock = FakeClock()
    with Progress("learning", "tokens", interval=1.0, stream=io.StringIO(), clock=clock) as bar:
        clock.now += 2.0
        bar.update(30)
        bar.set_total(120)
        clock.now += 1.0
        bar.update(30)
    assert absl_lines() == [
        "learning: 30 tokens, 15 tokens/s",
        "learning: 60 of 120 tokens (50.0%), 20 tokens/s",
        "learning: 60 of 120 tokens (50.0%), 20 tokens/s (done)",
    ]


def test_work_done_before_counts_towards_the_share_not_the_rate(absl_lines):
    clock = FakeClock()
    bar = Progress("2 shard(s)", "B", total=4000, initial=3000, interval=1.0,
                   stream=io.StringIO(), clock=clock)
    clock.now += 2.0
    bar.update(500, documents=3, instances=40)
    assert absl_lines() == ["2 shard(s): 3.5 kB of 4.0 kB (87.5%), 250 B/s, 3 documents, "
                            "40 instances"]


def test_an_error_inside_logs_no_last_line(absl_lines):
    clock = FakeClock()
    with pytest.raises(KeyError):
        with Progress("reading", "lines", interval=1.0, stream=io.StringIO(), clock=clock) as bar:
            clock.now += 1.0
            bar.update(3)
            bar.update(3)
            raise KeyError("boom")
    assert absl_lines() == ["reading: 3 lines, 3 lines/s"]  # the periodic line only


def test_the_bar_is_for_a_terminal_only(absl_lines, monkeypatch):
    terminal = Terminal()
    with Progress("reading", "lines", total=10, stream=terminal) as bar:
        assert bar.mode == progress.BAR and bar.active
        bar.update(4, documents=2)
    drawn = terminal.getvalue()
    assert "reading:  40%" in drawn and "2 documents" in drawn
    assert absl_lines() == []  # a bar, no log lines

    # The default stream is stderr as it is when the helper is made.
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert Progress("x").mode == progress.BAR
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert Progress("x").mode == progress.LOG


def test_a_stream_without_a_working_isatty_gets_log_lines():
    closed = io.StringIO()
    closed.close()  # isatty() raises ValueError
    assert progress.choose_mode(True, closed) == progress.LOG
    assert progress.choose_mode(True, object()) == progress.LOG
    assert progress.choose_mode(False, Terminal()) == progress.OFF


def test_disabled_shows_nothing_anywhere(absl_lines):
    clock = FakeClock()
    terminal = Terminal()
    with Progress("reading", enabled=False, interval=0.0, stream=terminal, clock=clock) as bar:
        assert bar.mode == progress.OFF and not bar.active
        clock.now += 60
        bar.update(10, lines=3)
        bar.set_total(20)
    assert terminal.getvalue() == "" and absl_lines() == []


def test_no_monitor_thread_so_forking_stays_safe(monkeypatch):
    tqdm = pytest.importorskip("tqdm")
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 10)  # tqdm's default starts a thread
    before = set(threading.enumerate())
    with Progress("reading", total=10, stream=Terminal()) as bar:
        bar.update(5)
        started = set(threading.enumerate()) - before
    assert not started, started
