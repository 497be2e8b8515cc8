"""The results of a downstream evaluation, and the files they are written to.

``downstream_results.json``: each metric's ``mean``, ``std`` (the sample standard deviation
over the seeds, 0 for one run) and per-seed ``runs``, and the settings::

    {"task": "ud", "model": "out/model.ckpt-1000", "baseline": false,
     "metrics": {"accuracy": {"mean": 0.93, "std": 0.004, "runs": [0.93, 0.926, 0.934]}},
     "runs": [{"seed": 1, "accuracy": 0.93, "steps": 120, "seconds": 41.2}, ...],
     "settings": {"learning_rate": 5e-05, ...}}

``downstream_runs.txt``: a line of text per run. Both are written under a temporary name and
renamed when complete. TensorBoard events (``tf.compat.v1.summary.FileWriter``, TensorFlow
imported when they are written): tags ``downstream/<task>/<metric>`` (the mean) and
``downstream/<task>/<metric>/seed_<s>``, at the step given (a watched checkpoint's step), one
events file per step. The fine-tuning curves (``write_curves``), at each run's update numbers:
``downstream/<task>/finetune/seed_<s>/loss`` and ``.../learning_rate``, every ``--log_every``
updates and at the last.
"""

import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from norbert import fileio

RESULTS_NAME = "downstream_results.json"
RUNS_NAME = "downstream_runs.txt"


@dataclasses.dataclass(frozen=True)
class Run:
    """One fine-tuning run's scores."""

    seed: int
    scores: Mapping[str, float]  # metric -> value
    steps: int
    seconds: float
    # update number -> the training loss and the learning rate of that update (the curve)
    losses: Mapping[int, float] = dataclasses.field(default_factory=dict)
    learning_rates: Mapping[int, float] = dataclasses.field(default_factory=dict)

    def line(self) -> str:
        scores = ", ".join("%s %.4f" % (k, v) for k, v in sorted(self.scores.items()))
        return "seed %d: %s (%d updates, %.1f s)" % (self.seed, scores, self.steps, self.seconds)


def mean_and_std(values: Sequence[float]) -> Tuple[float, float]:
    """The mean and the sample standard deviation (0.0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


@dataclasses.dataclass(frozen=True)
class DownstreamResults:
    """Every run of one evaluation, and what they were run with."""

    task: str  # the task's name
    model: str  # the checkpoint, or "random weights (baseline)"
    baseline: bool  # True: no checkpoint, random weights
    runs: Tuple[Run, ...]
    settings: Mapping[str, Any]  # the hyperparameters and files

    def metrics(self) -> Dict[str, Dict[str, Any]]:
        """metric -> {"mean", "std", "runs"} (runs in seed order)."""
        out = {}
        for name in sorted(self.runs[0].scores):
            values = [run.scores[name] for run in self.runs]
            mean, std = mean_and_std(values)
            out[name] = {"mean": mean, "std": std, "runs": values}
        return out

    def to_json(self) -> Dict[str, Any]:
        runs = [dict(seed=r.seed, steps=r.steps, seconds=round(r.seconds, 3), **r.scores)
                for r in self.runs]
        return {"task": self.task, "model": self.model, "baseline": self.baseline,
                "metrics": self.metrics(), "runs": runs, "settings": dict(self.settings)}

    def summary(self) -> str:
        """One line per metric: mean +- std over the seeds."""
        head = "%s, %s:" % (self.task, self.model)
        parts = ["%s %.4f +- %.4f" % (name, m["mean"], m["std"])
                 for name, m in self.metrics().items()]
        return "%s %s (%d seeds)" % (head, ", ".join(parts), len(self.runs))


def write_results(results: DownstreamResults, folder: str) -> str:
    """``folder``/downstream_results.json and downstream_runs.txt; returns the JSON's path."""
    path = os.path.join(folder, RESULTS_NAME)
    with fileio.atomic_output(path, "w") as f:
        f.write(json.dumps(results.to_json(), indent=2, sort_keys=True) + "\n")
    with fileio.atomic_output(os.path.join(folder, RUNS_NAME), "w") as f:
        f.write("".join(run.line() + "\n" for run in results.runs))
    return path


def write_events(folder: str, results: DownstreamResults, step: int) -> None:
    """The scores as TensorBoard scalars at ``step``, in ``folder``."""
    values = {}
    for name, metric in results.metrics().items():
        tag = "downstream/%s/%s" % (results.task, name)
        values[tag] = metric["mean"]
        for run in results.runs:
            values["%s/seed_%d" % (tag, run.seed)] = run.scores[name]
    _write_scalars(folder, ".step-%d" % step, {step: values})


def write_curves(folder: str, results: DownstreamResults) -> None:
    """Each run's fine-tuning curve (training loss and learning rate at the logged updates) as
    TensorBoard scalars in ``folder``, the update number as the step."""
    by_step: Dict[int, Dict[str, float]] = {}
    for run in results.runs:
        tag = "downstream/%s/finetune/seed_%d/" % (results.task, run.seed)
        for name, curve in (("loss", run.losses), ("learning_rate", run.learning_rates)):
            for update, value in curve.items():
                by_step.setdefault(int(update), {})[tag + name] = value
    if by_step:
        _write_scalars(folder, ".finetune", by_step)


def _write_scalars(folder: str, suffix: str, by_step: Mapping[int, Mapping[str, float]]) -> None:
    """One events file in ``folder``: at each step, its tag -> value scalars."""
    import tensorflow.compat.v1 as tf

    with tf.Graph().as_default():  # FileWriter refuses eager mode (TF 2.x's default)
        # A file per call: FileWriter names its files by the second, so that two written within
        # one second would otherwise be one file, the later overwriting the earlier.
        writer = tf.summary.FileWriter(folder, filename_suffix=suffix)
        try:
            for step in sorted(by_step):
                values = [tf.Summary.Value(tag=tag, simple_value=float(value))
                          for tag, value in sorted(by_step[step].items())]
                writer.add_summary(tf.Summary(value=values), global_step=step)
        finally:
            writer.close()


def read_jsonl(path: str) -> List[Dict[str, Any]]:
    """The records of a JSONL file; [] when it does not exist. A last line cut short (a crash
    while appending, on storage without rename) is left out."""
    if not fileio.exists(path):
        return []
    out = []
    for line in fileio.read_bytes(path, what="results file").decode("utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def append_jsonl(path: str, record: Mapping[str, Any],
                 earlier: Optional[Sequence[Mapping[str, Any]]] = None) -> None:
    """Adds ``record`` as the last line of ``path``: the file is written anew under a temporary
    name and renamed, so that a reader never sees half a line."""
    records = list(read_jsonl(path) if earlier is None else earlier) + [record]
    with fileio.atomic_output(path, "w") as f:
        f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
