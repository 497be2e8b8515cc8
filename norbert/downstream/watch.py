"""``--watch``: downstream evaluation beside a training run, as TensorFlow's sidecar evaluator
works beside a trainer.

The watcher looks into a ``run_pretraining --output_dir`` every ``--watch_poll_secs`` and
evaluates each checkpoint (``model.ckpt-N.index`` and its data) it has not evaluated yet, oldest
first. Results go to ``<run>/downstream_<task>/``: TensorBoard events at the checkpoint's step
(beside the run's masked-LM curves, under ``downstream/<task>/...``), and a line per checkpoint
in ``checkpoints.jsonl`` (the results' JSON with ``step`` and ``checkpoint``), which a restarted
watcher reads to resume where it stopped. Each checkpoint's fine-tuning curves (training loss
and learning rate per update) go to ``downstream_<task>/finetune_step-N/``, a TensorBoard run of
their own.

It ends:
- once a checkpoint at the run's final step is evaluated: ``--watch_final_step``, or the
  ``--num_train_steps`` of the command in the run's lock file (``norbert.training.run_lock``)
  while the run holds it;
- once the run has stopped (no lock) and every checkpoint it left is evaluated;
- after ``--watch_timeout_secs`` without a new checkpoint.

The run deletes old checkpoints (``--keep_checkpoint_max``): one deleted before the watcher
read it is skipped with a log line; one read is copied first, so that each seed's run finds it.
"""

import dataclasses
import json
import os
import re
import tempfile
import time
from typing import Callable, Dict, List, Optional

from absl import logging

from norbert import fileio
from norbert.downstream import results as resultslib
from norbert.downstream.config import WatchConfig
from norbert.downstream.results import DownstreamResults
from norbert.errors import NorbertError
from norbert.training.run_lock import LOCK_NAME

Evaluate = Callable[[str], DownstreamResults]  # a checkpoint prefix -> its results

JSONL_NAME = "checkpoints.jsonl"
_CHECKPOINT_RE = re.compile(r"^model\.ckpt-(\d+)\.index$")
_STEPS_RE = re.compile(r"--num_train_steps[= ](\d+)")


def checkpoint_steps(folder: str) -> Dict[int, str]:
    """step -> checkpoint prefix, for every ``model.ckpt-N.index`` in ``folder``."""
    out = {}
    for path in fileio.glob(os.path.join(folder, "model.ckpt-*.index")):
        match = _CHECKPOINT_RE.match(os.path.basename(path))
        if match:
            out[int(match.group(1))] = path[:-len(".index")]
    return out


def running_command(folder: str) -> Optional[str]:
    """The command of the run holding ``folder``'s lock, or None when no run holds it."""
    path = os.path.join(folder, LOCK_NAME)
    try:
        holder = json.loads(fileio.read_bytes(path, what="run lock").decode("utf-8"))
    except (NorbertError, ValueError, UnicodeDecodeError):
        return None if not fileio.exists(path) else ""
    return str(holder.get("command", "")) if isinstance(holder, dict) else ""


def final_step(watch: WatchConfig, command: Optional[str]) -> Optional[int]:
    """The run's final step: ``--watch_final_step``, else the running command's
    ``--num_train_steps``; None when unknown."""
    if watch.watch_final_step:
        return watch.watch_final_step
    match = _STEPS_RE.search(command or "")
    return int(match.group(1)) if match else None


def _record(results: DownstreamResults, step: int, checkpoint: str) -> dict:
    return dict(results.to_json(), step=step, checkpoint=checkpoint)


def _copy(prefix: str, folder: str) -> str:
    """The checkpoint at ``prefix`` copied into ``folder`` (index first, then its data); returns
    the copy's prefix. Raises when a file is gone."""
    import tensorflow.compat.v1 as tf

    files = [prefix + ".index"] + sorted(tf.io.gfile.glob(prefix + ".data-*"))
    for path in files:
        tf.io.gfile.copy(path, os.path.join(folder, os.path.basename(path)), overwrite=True)
    return os.path.join(folder, os.path.basename(prefix))


def _evaluate(evaluate: Evaluate, prefix: str) -> Optional[DownstreamResults]:
    """The results for checkpoint ``prefix``, or None when it was deleted before it was read.

    Evaluated from a copy: each seed's run reads the checkpoint, and the run may delete it
    (``--keep_checkpoint_max``) meanwhile.
    """
    with tempfile.TemporaryDirectory(prefix="norbert-watch-") as folder:
        try:
            copy = _copy(prefix, folder)
        except Exception:  # tf.errors.NotFoundError: deleted under us
            if fileio.exists(prefix + ".index"):
                raise
            logging.info("skipped %s: deleted (the run keeps only its newest checkpoints) "
                         "before it was read", prefix)
            return None
        return dataclasses.replace(evaluate(copy), model=prefix)


def watch_run(watch: WatchConfig, name: str, evaluate: Evaluate,
              clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> List[DownstreamResults]:
    """Evaluates (``evaluate``) each new checkpoint of the run folder ``watch.watch`` once,
    until the run ends (see the module's docstring), into ``downstream_<name>/``; returns the
    results of this call's evaluations."""
    folder = watch.watch
    if not fileio.exists(folder):
        raise NorbertError("--watch=%s does not exist: give a run_pretraining --output_dir"
                           % folder)
    out_dir = os.path.join(folder, "downstream_" + name)
    jsonl = os.path.join(out_dir, JSONL_NAME)
    earlier = resultslib.read_jsonl(jsonl)
    done = {int(r["step"]) for r in earlier if "step" in r}
    if done:
        logging.info("resuming: %d checkpoints of %s evaluated before (up to step %d)",
                     len(done), folder, max(done))
    evaluated: List[DownstreamResults] = []
    last_new = clock()
    while True:
        command = running_command(folder)
        final = final_step(watch, command)
        found = checkpoint_steps(folder)
        for step in sorted(s for s in found if s not in done):
            results = _evaluate(evaluate, found[step])
            done.add(step)
            last_new = clock()
            if results is None:
                continue
            earlier.append(_record(results, step, found[step]))
            resultslib.append_jsonl(jsonl, earlier[-1], earlier[:-1])
            resultslib.write_events(out_dir, results, step)
            # Each checkpoint's fine-tuning curves: a TensorBoard run of their own (their steps
            # are updates of the fine-tuning, not of the pretraining).
            resultslib.write_curves(os.path.join(out_dir, "finetune_step-%d" % step), results)
            logging.info("step %d: %s", step, results.summary())
            evaluated.append(results)
        reason = _finished(final, done, command, found, clock() - last_new, watch)
        if reason:
            logging.info("watch of %s ends: %s", folder, reason)
            return evaluated
        sleep(watch.watch_poll_secs)


def _finished(final: Optional[int], done, command: Optional[str], found, idle: float,
              watch: WatchConfig) -> Optional[str]:
    """Why the watch ends now, or None to look again later."""
    if final is not None and any(step >= final for step in done):
        return "the run's final step %d is evaluated" % final
    if command is None and found and all(step in done for step in found):
        return "the run has stopped and each of its checkpoints is evaluated"
    if watch.watch_timeout_secs and idle > watch.watch_timeout_secs:
        return "no new checkpoint for %.0f seconds (--watch_timeout_secs)" % idle
    return None
