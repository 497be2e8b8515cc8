"""Checkpoints: finding them, and starting a model from one with a report of what was used.

``--init_checkpoint`` seeds the model's trainable variables (BERT and its heads), as Google's
``run_pretraining.py`` does. Optimizer state in it (``adam_m``/``adam_v``, LAMB slots,
accumulators) and ``global_step`` are left out on purpose: a new run starts its own schedule.
To continue a run, including its optimizer state and step, point ``--output_dir`` at it.
"""

import dataclasses
import re
from typing import Dict, List, Optional, Sequence, Tuple

import tensorflow.compat.v1 as tf

from norbert import fileio
from norbert.errors import NorbertError

# Variables a run keeps for itself, never taken from an --init_checkpoint.
_RUN_STATE_RE = re.compile(
    r"(^global_step$|/(adam|lamb)_[mv]$|/grad_acc$|^gradient_accumulation/|^loss_scale/"
    r"|/Adam(_\d+)?$)"
)


def is_run_state(name: str) -> bool:
    """True for optimizer slots, accumulators and the step counter."""
    return bool(_RUN_STATE_RE.search(name))


def resolve(path: str, flag: str = "--init_checkpoint") -> str:
    """A checkpoint prefix from a prefix or a folder (its latest); ``NorbertError`` if none."""
    if fileio.exists(path) and tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise NorbertError("%s=%s: the folder holds no checkpoint" % (flag, path))
        return latest
    if not fileio.exists(path + ".index"):
        raise NorbertError(
            "%s=%s: no checkpoint there (expected %s.index; give the prefix, e.g. "
            "model.ckpt-1000, or the folder)" % (flag, path, path)
        )
    return path


def variables_in(checkpoint: str) -> Dict[str, List[int]]:
    return dict(tf.train.list_variables(checkpoint))


@dataclasses.dataclass
class RestoreReport:
    """What an initialisation from a checkpoint did."""

    checkpoint: str
    restored: List[str]  # graph variables given the checkpoint's values
    fresh: List[str]  # trainable graph variables the checkpoint lacks: initialised anew
    unused: List[str]  # checkpoint variables nothing took (optimizer state, other heads)

    def summary(self) -> str:
        lines = [
            "initialised %d variables from %s" % (len(self.restored), self.checkpoint),
        ]
        if self.fresh:
            lines.append("  newly initialised (not in the checkpoint): " + ", ".join(self.fresh))
        if self.unused:
            state = [n for n in self.unused if is_run_state(n)]
            other = [n for n in self.unused if not is_run_state(n)]
            if state:
                lines.append(
                    "  not restored, optimizer state or step of the earlier run: %d variables"
                    % len(state)
                )
            if other:
                lines.append("  not restored, unused by this model: " + ", ".join(other))
        return "\n".join(lines)


def assignment_map(
    checkpoint: str, variables: Optional[Sequence] = None
) -> Tuple[Dict[str, str], RestoreReport]:
    """Checkpoint name -> graph name for every trainable variable the checkpoint holds.

    A variable present under the same name with another shape is a ``NorbertError`` naming it:
    a config that does not match the checkpoint must stop the run, not train a hybrid.
    """
    variables = list(variables if variables is not None else tf.trainable_variables())
    stored = variables_in(checkpoint)
    mapping, fresh = {}, []
    for var in variables:
        name = var.op.name
        if name not in stored:
            fresh.append(name)
            continue
        want = var.shape.as_list()
        if list(stored[name]) != want:
            raise NorbertError(
                "--init_checkpoint=%s: variable %s has shape %s there but %s in this model; "
                "check that --bert_config_file is the checkpoint's own bert_config.json"
                % (checkpoint, name, list(stored[name]), want)
            )
        mapping[name] = name
    unused = sorted(n for n in stored if n not in mapping)
    return mapping, RestoreReport(checkpoint, sorted(mapping), sorted(fresh), unused)


def init_from_checkpoint(checkpoint: str, variables: Optional[Sequence] = None) -> RestoreReport:
    """Makes the variables' initializers read ``checkpoint`` (before the session starts)."""
    mapping, report = assignment_map(checkpoint, variables)
    if mapping:
        tf.train.init_from_checkpoint(checkpoint, mapping)
    return report
