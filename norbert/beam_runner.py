"""Running a data tool as an Apache Beam pipeline: the settings (``BeamConfig``) and the
pipeline options made from them.

The data builder and the vocab builder's word counting take the same two flags, so that one
command runs on the launching machine (``--runner=DirectRunner``) or on a cluster (Dataflow,
Flink, Spark)::

    --runner=DataflowRunner \\
    --beam_pipeline_options="project=P,region=R,temp_location=gs://B/tmp,num_workers=50"

Beam is an extra (``pip install norbert[beam]``): nothing else in norbert imports it, and a run
that asks for a runner without it gets a one-line error saying what to install.

The workers' INFO logs are off by default (``default_sdk_harness_log_level=WARNING``, unless
the options name a level), and so are Beam's own INFO lines on the launching machine while the
pipeline runs: dozens of lines per worker that would bury the tool's log, which says so once.
The DirectRunner's worker processes (``direct_running_mode=multi_processing``) share this
machine's terminal and print a line or two of their own before that level applies (Beam's
worker start-up logs at INFO before it reads the options); what they print themselves goes to
a log file instead, which the tool's log names: their warnings and errors still reach the
tool's log through the runner.

Bad input met in a worker (a ``NorbertError``: a damaged file, a malformed line) fails the
pipeline with the one-line error it would be on this machine, whatever the runner: the runner
reports the worker's traceback as text, from which ``worker_error`` takes the message, and the
workers' error log records of it are left out (``--verbose`` shows the traceback).
"""

import contextlib
import dataclasses
import logging as std_logging
import os
import re
import sys
import tempfile
from typing import ClassVar, Iterator, List, Optional

from absl import logging

from norbert.errors import NorbertError


@dataclasses.dataclass(frozen=True)
class BeamConfig:
    """Whether a data tool runs as an Apache Beam pipeline, and where."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Apache Beam"

    # Run as an Apache Beam pipeline on this runner: DirectRunner (this machine),
    # DataflowRunner, FlinkRunner, SparkRunner, ... Unset: no Beam (the local modes).
    runner: Optional[str] = None
    # Beam's pipeline options, comma-separated key=value, as `tfds build` takes them: e.g.
    # "project=P,region=R,temp_location=gs://B/tmp,num_workers=50" for Dataflow, or
    # "direct_num_workers=2,direct_running_mode=multi_processing" on this machine.
    beam_pipeline_options: str = ""

    def __post_init__(self) -> None:
        """Raises ``NorbertError`` naming the flag for settings that cannot work."""
        if self.runner is not None and not self.runner.strip():
            raise NorbertError("--runner is empty: name a Beam runner, e.g. DirectRunner")
        if self.beam_pipeline_options and self.runner is None:
            raise NorbertError(
                "--beam_pipeline_options needs --runner: name the Beam runner, e.g. "
                "--runner=DirectRunner or --runner=DataflowRunner"
            )
        option_flags(self.beam_pipeline_options)  # malformed items are errors here

    @property
    def enabled(self) -> bool:
        return self.runner is not None


def local_workers_error(what: str) -> NorbertError:
    """The error for --num_workers beside --runner: Beam's options say how many workers run.
    ``what``: the work done on this machine without --runner ("building", "counting")."""
    return NorbertError(
        "--num_workers is for %s on this machine; with --runner give Beam's workers in "
        "--beam_pipeline_options (direct_num_workers=N locally, num_workers=N on Dataflow)"
        % what)


def option_flags(text: str) -> List[str]:
    """``"a=1,b=x"`` -> ``["--a=1", "--b=x"]``, Beam's command-line form of its options.

    An item without ``=`` is a switch (``use_public_ips`` -> ``--use_public_ips``).
    """
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key = item.split("=", 1)[0].strip()
        if not key or key.startswith("-") or " " in key:
            raise NorbertError(
                "--beam_pipeline_options: %r is not key=value: give Beam's options without "
                "dashes, comma-separated, e.g. \"project=P,region=R\"" % item
            )
        out.append("--" + item)
    return out


def import_beam():
    """The ``apache_beam`` module, or a one-line ``NorbertError`` saying what to install."""
    try:
        import apache_beam  # deferred: an extra
    except ImportError:
        raise NorbertError(
            "--runner needs Apache Beam, which is not installed: pip install 'norbert[beam]' "
            "(or leave --runner out to build on this machine)"
        ) from None
    return apache_beam


def pipeline_options(config: BeamConfig):
    """Beam's ``PipelineOptions`` for ``config``: its options, then its runner.

    Checked before any work: a runner Beam does not know, and an option that neither Beam nor
    the runner knows, are errors naming them (Beam itself would only warn, and a misspelt
    ``num_wrokers`` would silently run on one worker).
    """
    beam = import_beam()
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    from apache_beam.runners.runner import create_runner

    try:
        create_runner(config.runner)  # also registers the runner's own options (Dask's, ...)
    except (ValueError, ImportError) as e:
        raise NorbertError("--runner=%s: %s" % (config.runner, " ".join(str(e).split())))
    flags = option_flags(config.beam_pipeline_options)
    if not any(f.startswith("--%s=" % _HARNESS_LEVEL) for f in flags):
        flags.append("--%s=%s" % (_HARNESS_LEVEL, QUIET_LEVEL))
    options = PipelineOptions(flags=flags)
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True))
                     - set(options.get_all_options(retain_unknown_options=False)))
    if unknown:
        raise NorbertError(
            "--beam_pipeline_options: Beam has no option %r (apache-beam %s, runner %s): check "
            "its spelling in Beam's pipeline options" % (unknown[0], beam.__version__,
                                                         config.runner)
        )
    options.view_as(StandardOptions).runner = config.runner
    return options


_HARNESS_LEVEL = "default_sdk_harness_log_level"  # Beam's option: the workers' log level
QUIET_LEVEL = "WARNING"  # the workers' log level unless --beam_pipeline_options names one


@contextlib.contextmanager
def pipeline(options) -> Iterator:
    """A Beam ``Pipeline`` with ``options`` (made by ``pipeline_options``), run when the
    ``with`` block ends; with the workers' INFO logs off, Beam's own INFO lines here are off
    too while it runs, and local worker processes' own output goes to a file (the log says
    where they went). A ``NorbertError`` that failed it in a worker is raised as such
    (``worker_error``), caused by the runner's error."""
    beam = import_beam()
    all_options = options.get_all_options()
    quiet = str(all_options.get(_HARNESS_LEVEL)).upper() == QUIET_LEVEL
    beam_logger = std_logging.getLogger("apache_beam")
    before = beam_logger.level
    with contextlib.ExitStack() as stack:
        if quiet:
            where = "to the runner's worker logs; here on the DirectRunner"
            if all_options.get("direct_running_mode") == "multi_processing":
                log_path = stack.enter_context(_child_stderr_to_file())
                where = ("here through the runner; what the worker processes print themselves "
                         "goes to %s" % log_path)
            logging.info("Beam's workers log warnings and errors only (%s): "
                         "--beam_pipeline_options=%s=INFO shows their INFO lines", where,
                         _HARNESS_LEVEL)
            beam_logger.setLevel(std_logging.WARNING)
        held = stack.enter_context(_errors_held_back())
        try:
            with beam.Pipeline(options=options) as p:
                yield p
        except Exception as e:
            error = worker_error(e)
            if error is None:
                raise
            held.clear()  # the error says it in one line; its cause holds their traceback
            if error is e:
                raise
            raise error from e
        finally:
            beam_logger.setLevel(before)


_ERROR_NAME = "%s.%s" % (NorbertError.__module__, NorbertError.__qualname__)
# Beam's note at the end of a re-raised error's message: the step that failed.
_STEP_NOTE = re.compile(r" \[while running '[^']*'\]$")
# Where the DirectRunner's worker processes' log records reach this process.
_WORKER_LOGGER = "apache_beam.runners.portability.local_job_service"


def worker_error(error: Exception) -> Optional[NorbertError]:
    """The ``NorbertError`` that failed a pipeline: ``error`` itself, or one raised in a worker
    (a process, a machine) that the runner reports inside ``error``'s text, a traceback whose
    first line ``norbert.errors.NorbertError: <message>`` gives it; None if neither."""
    if isinstance(error, NorbertError):
        return error
    prefix = _ERROR_NAME + ": "
    for line in str(error).splitlines():
        if line.startswith(prefix) and line[len(prefix):].strip():
            return NorbertError(_STEP_NOTE.sub("", line[len(prefix):].rstrip()))
    return None


@contextlib.contextmanager
def _errors_held_back() -> Iterator[List[std_logging.LogRecord]]:
    """Holds back the workers' error log records that report a ``NorbertError`` (each its
    traceback, on one line) while the pipeline runs, yielding the list that keeps them; those
    left in it when the pipeline is done are logged then. A failure that becomes the one-line
    error empties it."""
    held: List[std_logging.LogRecord] = []

    def hold(record: std_logging.LogRecord) -> bool:
        if record.levelno >= std_logging.ERROR and _ERROR_NAME in record.getMessage():
            held.append(record)
            return False
        return True

    logger = std_logging.getLogger(_WORKER_LOGGER)
    logger.addFilter(hold)
    try:
        yield held
    finally:
        logger.removeFilter(hold)
        for record in held:
            logger.handle(record)


@contextlib.contextmanager
def _child_stderr_to_file() -> Iterator[str]:
    """Points this process's stderr file descriptor, which the processes it starts inherit, at
    a new log file in the temporary folder, yielding its path; this process's own stderr
    writes (``sys.stderr`` and the logging handlers on it) go to the terminal as before."""
    fd, log_path = tempfile.mkstemp(prefix="norbert-beam-workers-", suffix=".log")
    if sys.stderr is not None:
        sys.stderr.flush()
    terminal = os.fdopen(os.dup(2), "w", buffering=1,
                         encoding=getattr(sys.stderr, "encoding", None), errors="backslashreplace")
    handlers = [h for h in _root_stream_handlers() if h.stream is sys.stderr]
    own_stderr = sys.stderr
    os.dup2(fd, 2)
    os.close(fd)
    sys.stderr = terminal
    for handler in handlers:
        handler.setStream(terminal)
    try:
        yield log_path
    finally:
        terminal.flush()
        os.dup2(terminal.fileno(), 2)
        sys.stderr = own_stderr
        for handler in handlers:
            handler.setStream(own_stderr)
        terminal.close()


def _root_stream_handlers() -> List[std_logging.StreamHandler]:
    """The root logger's stream handlers, absl's among them (it wraps one)."""
    out = []
    for handler in std_logging.getLogger().handlers:
        handler = getattr(handler, "python_handler", handler)  # absl's ABSLHandler
        if isinstance(handler, std_logging.StreamHandler):
            out.append(handler)
    return out
