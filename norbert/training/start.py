"""Where a run's variables come from: its own newest checkpoint, or an ``--init_checkpoint``.

Decided once per run, before any graph (``find_start``), and handed to the engine as a typed
``Start``: the loop restores the first of ``resume`` that restores, or else initialises from
``init_checkpoint`` (``initialise``, after the graph is built); TPUEstimator resumes from its
``model_dir`` itself and initialises inside its scaffold. The run's own checkpoint always wins,
so that a rerun of the same command after a preemption goes on where it stopped.
"""

import dataclasses
from typing import Optional, Tuple

from absl import logging

from norbert.model import checkpoints
from norbert.training.spec import TRAIN


@dataclasses.dataclass(frozen=True)
class Start:
    """A run's starting point: resume its own checkpoint, or initialise from another one."""

    # The run's own intact checkpoints in --output_dir, newest first (those whose files look
    # whole); the first that restores is resumed. Empty: a new run.
    resume: Tuple[str, ...] = ()
    # A new run's weights: a checkpoint prefix, already resolved (a folder's latest); None:
    # the model's own initialisers.
    init_checkpoint: Optional[str] = None
    # With init_checkpoint: the optimizer's moments too (a new phase of one training).
    init_optimizer_state: bool = False
    # With init_checkpoint: its global_step too, so that the schedule continues.
    keep_global_step: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "resume", tuple(self.resume))
        if self.resume and self.init_checkpoint:
            raise ValueError("a run resumes its own checkpoint or initialises from another "
                             "one, not both")
        if (self.init_optimizer_state or self.keep_global_step) and not self.init_checkpoint:
            # The flags' own check is PretrainingConfig's; this is a caller's mistake.
            raise ValueError("init_optimizer_state and keep_global_step take what they carry "
                             "from init_checkpoint, which is unset")

    def carried_over(self, mode: str) -> dict:
        """What a training run takes from ``init_checkpoint`` beyond the weights, as keywords
        of ``checkpoints.init_from_checkpoint``; evaluation takes the weights only."""
        if mode != TRAIN:
            return {}
        return {"optimizer_state": self.init_optimizer_state,
                "keep_global_step": self.keep_global_step}

    def describe(self) -> str:
        """One line for the run plan's block."""
        if self.resume:
            older = len(self.resume) - 1
            return "resume %s%s" % (self.resume[0], " (%d older intact checkpoint%s kept in "
                                    "reserve)" % (older, "" if older == 1 else "s")
                                    if older else "")
        if self.init_checkpoint:
            carried = [name for name, on in (("optimizer state", self.init_optimizer_state),
                                             ("global_step", self.keep_global_step)) if on]
            return "initialise from %s (weights%s)" % (
                self.init_checkpoint, "".join(", " + c for c in carried))
        return "fresh weights (no checkpoint in --output_dir, no --init_checkpoint)"


def find_start(output_dir: str, init_checkpoint: Optional[str] = None,
               init_optimizer_state: bool = False, keep_global_step: bool = False) -> Start:
    """The run's starting point, from one scan of ``output_dir``.

    Damaged checkpoints there are passed over, each with a warning; a folder whose checkpoints
    are all damaged is a ``NorbertError`` (``checkpoints.usable_checkpoints``).
    ``init_checkpoint`` (a prefix or a folder) is resolved only when there is nothing to resume.
    """
    intact = checkpoints.usable_checkpoints(output_dir)
    if intact:
        return Start(resume=tuple(intact))
    if not init_checkpoint:
        return Start()
    return Start(init_checkpoint=checkpoints.resolve(init_checkpoint),
                 init_optimizer_state=init_optimizer_state, keep_global_step=keep_global_step)


def initialise(start: Start, mode: str) -> None:
    """Makes the graph's initializers read ``start.init_checkpoint`` (after the model and its
    optimizer are built, before the session starts), and logs what was taken."""
    if start.init_checkpoint:
        report = checkpoints.init_from_checkpoint(start.init_checkpoint,
                                                  **start.carried_over(mode))
        logging.info("%s", report.summary())
