"""Checkpoints: finding them, and starting a model from one with a report of what was used.

``--init_checkpoint`` seeds the model's trainable variables (BERT and its heads), as Google's
``run_pretraining.py`` does. Optimizer state in it (``adam_m``/``adam_v``, LAMB slots,
accumulators) and ``global_step`` are left out by default: a new run starts its own schedule.
A new phase of a run (sequence length 512 after 128, another batch size) carries the moments
over with ``--init_optimizer_state``, and the step with ``--keep_global_step``. To continue a
run as it was, point ``--output_dir`` at it.

Whole checkpoints as numpy, for the conversion tools: ``checkpoint_shapes``, ``read_checkpoint``
(a damaged or cut-short one is a one-line ``NorbertError`` naming it and the fix) and
``save_checkpoint``.
"""

import dataclasses
import os
import re
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np
from absl import logging

from norbert import fileio
from norbert.errors import NorbertError

# Variables a run keeps for itself, never taken from an --init_checkpoint.
_RUN_STATE_RE = re.compile(
    r"(^global_step$|/(adam|lamb)_[mv]$|/grad_acc$|^gradient_accumulation/|^loss_scale/"
    r"|/Adam(_\d+)?$)"
)


# Adam's and LAMB's moments: what --init_optimizer_state carries into a new phase.
_MOMENT_RE = re.compile(r"/(adam|lamb)_[mv]$")
_OPTIMIZERS = {"adam": "adamw or adamw_exact", "lamb": "lamb"}  # slot prefix -> --optimizer


def _tf():
    """TensorFlow (compat.v1), imported by the functions that read a checkpoint or touch the
    graph: finding that there is none to read (a new run's folder, a wrong path) needs none,
    so that a run's plan answers a wrong flag before TensorFlow loads."""
    import tensorflow.compat.v1 as tf

    return tf


def is_run_state(name: str) -> bool:
    """True for optimizer slots, accumulators and the step counter."""
    return bool(_RUN_STATE_RE.search(name))


def resolve(path: str, flag: str = "--init_checkpoint") -> str:
    """A checkpoint prefix from a prefix or a folder (its latest); ``NorbertError`` if none.

    A folder's damaged checkpoints are passed over (with a warning) for its newest intact one;
    a damaged prefix is an error naming the file.
    """
    if fileio.is_dir(path):
        latest = latest_intact(path, flag=flag)
        if latest is None:
            raise NorbertError(
                "%s=%s: the folder holds no checkpoint (looked for model.ckpt-N.index with its "
                ".data-* files, or a 'checkpoint' state file naming them, as run_pretraining "
                "writes them): pass the folder that holds them, or a prefix such as "
                "model.ckpt-1000" % (flag, path))
        return latest
    if not fileio.exists(path + ".index"):
        raise NorbertError(
            "%s=%s: no checkpoint there (expected %s.index; give the prefix, e.g. "
            "model.ckpt-1000, or the folder)" % (flag, path, path)
        )
    problem = damage(path)
    if problem:
        raise NorbertError("%s=%s: the checkpoint is damaged (%s): copy it again"
                           % (flag, path, problem))
    return path


def damage(prefix: str) -> Optional[str]:
    """Why the checkpoint at ``prefix`` cannot be restored, or None when it looks intact.

    Cheap: reads the ``.index`` (a truncated or corrupt one does not parse) and compares the
    ``.data-*`` files' sizes with the bytes its tensors need (a save or copy cut short leaves
    them shorter). Flipped bytes inside the data show only when restoring (checksums).
    """
    tf = _tf()
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
    except Exception as e:  # tf.errors.*, and IndexError etc. from the index parser
        return "%s.index is unreadable: %s" % (prefix, tf_message(e))
    needed = 0
    for name, shape in shapes.items():
        try:
            dtype = tf.as_dtype(dtypes[name])
        except (KeyError, TypeError, ValueError):
            continue
        if not (dtype.is_floating or dtype.is_integer or dtype.is_bool or dtype.is_complex):
            continue  # strings, resources and the like: no fixed size to count
        size = dtype.size
        count = 1
        for n in shape:
            count *= n
        needed += count * size
    files = tf.io.gfile.glob(prefix + ".data-*")
    if not files:
        return "%s.data-* is missing" % prefix if needed else None
    have = sum(tf.io.gfile.stat(f).length for f in files)
    if have < needed:
        return "%s is truncated: %d bytes where the index needs %d" % (
            files[0] if len(files) == 1 else prefix + ".data-*", have, needed)
    return None


def unreadable(prefix: str) -> Optional[str]:
    """Why the checkpoint at ``prefix`` does not read whole, or None: every tensor is read (one
    at a time, so that a large checkpoint is not held in memory), which checks its checksums:
    what ``damage`` cannot see, at the cost of reading it all."""
    tf = _tf()
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as e:  # tf.errors.* (a checksum), IndexError etc. (data cut short)
        return tf_message(e)
    return None


def tf_message(error: Exception) -> str:
    """The line of a TensorFlow error that says what went wrong, without the graph's trace.

    TF 2.x puts it last ("Graph execution error: ... Node: 'x'\n<what>\n [[{{node x}}]]"),
    TF 1.15 first, followed by the node and "Original stack trace" lines.
    """
    text = getattr(error, "message", None) or str(error)
    text = text.split("Original stack trace")[0]
    noise = ("[[", "File ", "Detected at node", "Graph execution error", "Node:", "(most recent")
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith(noise)]
    return lines[-1] if lines else type(error).__name__


def intact_checkpoints(folder: str) -> Tuple[List[str], List[Tuple[str, str]]]:
    """(the folder's checkpoints that look intact, newest first; the damaged ones with why).

    The checkpoints are those the folder's ``checkpoint`` state file lists, as
    ``tf.train.latest_checkpoint`` reads it; that function would return the newest even when
    its files were cut short.
    """
    if not fileio.exists(os.path.join(folder, "checkpoint")):  # no folder, or no run's
        return [], []
    tf = _tf()
    state = tf.train.get_checkpoint_state(folder)
    if state is None:
        return [], []
    paths = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path and state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    intact, damaged = [], []
    for path in reversed(paths):  # the state file lists them oldest first
        if not tf.io.gfile.exists(path + ".index"):
            continue  # deleted (keep_checkpoint_max) after the state file was written
        problem = damage(path)
        if problem:
            damaged.append((path, problem))
        else:
            intact.append(path)
    return intact, damaged


def usable_checkpoints(folder: str, flag: str = "--output_dir") -> List[str]:
    """The intact checkpoints of ``folder``, newest first, warning about each damaged one;
    ``NorbertError`` when there are checkpoints but all are damaged (starting afresh would
    silently throw a run away)."""
    intact, damaged = intact_checkpoints(folder)
    for path, problem in damaged:
        logging.warning(
            "%s=%s: skipping the damaged checkpoint %s (%s); %s", flag, folder, path,
            problem, "using %s" % intact[0] if intact else "no intact checkpoint is left")
    if damaged and not intact:
        raise NorbertError(
            "%s=%s: every checkpoint there is damaged (%s): move them away to start afresh, or "
            "restore the folder from a copy" % (flag, folder, "; ".join(p for _, p in damaged)))
    return intact


def latest_intact(folder: str, flag: str = "--output_dir") -> Optional[str]:
    """The newest intact checkpoint of ``folder`` (``usable_checkpoints``), or None."""
    intact = usable_checkpoints(folder, flag)
    return intact[0] if intact else None


def variables_in(checkpoint: str) -> Dict[str, List[int]]:
    tf = _tf()
    return dict(tf.train.list_variables(checkpoint))


@dataclasses.dataclass
class RestoreReport:
    """What an initialisation from a checkpoint did."""

    checkpoint: str
    restored: List[str]  # graph variables given the checkpoint's values
    fresh: List[str]  # trainable graph variables the checkpoint lacks: initialised anew
    unused: List[str]  # checkpoint variables nothing took (optimizer state, other heads)

    def summary(self) -> str:
        state = [n for n in self.restored if is_run_state(n)]
        lines = [
            "initialised %d variables from %s%s" % (
                len(self.restored), self.checkpoint,
                " (%d of them optimizer state or the step, carried over)" % len(state)
                if state else ""),
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


def shape_mismatch(stored: Dict[str, Sequence[int]], variables: Sequence) -> Optional[str]:
    """"variable X has shape A there but B in this model" for the first of ``variables`` that
    ``stored`` (a checkpoint's name -> shape) holds with another shape, or None."""
    for var in variables:
        name = var.op.name
        want = var.shape.as_list()
        if name in stored and list(stored[name]) != want:
            return "variable %s has shape %s there but %s in this model" % (
                name, list(stored[name]), want)
    return None


def assignment_map(
    checkpoint: str, variables: Optional[Sequence] = None
) -> Tuple[Dict[str, str], RestoreReport]:
    """Checkpoint name -> graph name for every trainable variable the checkpoint holds.

    A variable present under the same name with another shape is a ``NorbertError`` naming it:
    a config that does not match the checkpoint must stop the run, not train a hybrid.
    """
    tf = _tf()
    variables = list(variables if variables is not None else tf.trainable_variables())
    stored = variables_in(checkpoint)
    mismatch = shape_mismatch(stored, variables)
    if mismatch:
        raise NorbertError(
            "--init_checkpoint=%s: %s; check that --bert_config_file is the checkpoint's own "
            "bert_config.json" % (checkpoint, mismatch))
    mapping, fresh = {}, []
    for var in variables:
        name = var.op.name
        if name not in stored:
            fresh.append(name)
            continue
        mapping[name] = name
    unused = sorted(n for n in stored if n not in mapping)
    return mapping, RestoreReport(checkpoint, sorted(mapping), sorted(fresh), unused)


def _moment_kinds(names) -> Set[str]:
    return {m.group(1) for m in map(_MOMENT_RE.search, names) if m}


def carried_state(checkpoint: str, moments: bool, step: bool) -> List:
    """The graph's optimizer moments (``moments``) and ``global_step`` (``step``) to take from
    ``checkpoint`` too, once the train op has made them; a ``NorbertError`` naming the flag
    when the checkpoint cannot give them (none there, or another optimizer's)."""
    tf = _tf()
    stored = variables_in(checkpoint)
    out = []
    if moments:
        mine = [v for v in tf.global_variables() if _MOMENT_RE.search(v.op.name)]
        theirs, ours = _moment_kinds(stored), _moment_kinds(v.op.name for v in mine)
        if not theirs:
            raise NorbertError(
                "--init_optimizer_state: %s holds no optimizer moments (adam_m/adam_v or "
                "lamb_m/lamb_v; a released model's checkpoint usually has none): leave the flag "
                "out to start the optimizer afresh" % checkpoint)
        if not theirs & ours:
            raise NorbertError(
                "--init_optimizer_state: %s holds the moments of --optimizer=%s, which this "
                "run's --optimizer=%s cannot use: train with the earlier run's optimizer, or "
                "leave the flag out" % (checkpoint, " / ".join(_OPTIMIZERS[k] for k in theirs),
                                        " / ".join(_OPTIMIZERS[k] for k in ours)))
        out.extend(mine)
    if step:
        if "global_step" not in stored:
            raise NorbertError("--keep_global_step: %s holds no global_step to continue from"
                               % checkpoint)
        out.append(tf.train.get_global_step())
    return out


def init_from_checkpoint(checkpoint: str, variables: Optional[Sequence] = None,
                         optimizer_state: bool = False,
                         keep_global_step: bool = False) -> RestoreReport:
    """Makes the variables' initializers read ``checkpoint`` (before the session starts):
    the trainable ones, and with ``optimizer_state`` / ``keep_global_step`` the optimizer's
    moments / the step too (call it after the train op is built)."""
    tf = _tf()
    if optimizer_state or keep_global_step:
        variables = list(variables if variables is not None else tf.trainable_variables())
        variables += carried_state(checkpoint, optimizer_state, keep_global_step)
    mapping, report = assignment_map(checkpoint, variables)
    if mapping:
        tf.train.init_from_checkpoint(checkpoint, mapping)
    return report


# ---- whole checkpoints as numpy: read and written by export, import and extend_vocab -----


def _open_reader(checkpoint: str):
    """TensorFlow's reader of the checkpoint at prefix ``checkpoint``; ``NorbertError`` naming
    it when its index does not parse (a copy cut short, or not a checkpoint)."""
    tf = _tf()
    try:
        reader = tf.train.load_checkpoint(checkpoint)
        reader.get_variable_to_shape_map()
    except Exception as e:  # tf.errors.*, and IndexError etc. from the index parser
        raise NorbertError("checkpoint %s is unreadable (%s): copy it again"
                           % (checkpoint, tf_message(e))) from None
    return reader


def checkpoint_shapes(checkpoint: str) -> Dict[str, Tuple[int, ...]]:
    """Name -> shape of every variable in the checkpoint at prefix ``checkpoint``, read from its
    index alone (cheap: no tensor is read). ``NorbertError`` when the index is unreadable."""
    shapes = _open_reader(checkpoint).get_variable_to_shape_map()
    return {name: tuple(shape) for name, shape in shapes.items()}


def read_checkpoint(checkpoint: str, names: Optional[Iterable[str]] = None,
                    fix: str = "copy it again, or use an earlier checkpoint"
                    ) -> Dict[str, np.ndarray]:
    """Name -> value (numpy, the stored dtype) of ``names``, or of every variable, in the
    checkpoint at prefix ``checkpoint``.

    A checkpoint that cannot be read is a one-line ``NorbertError`` naming it: an unreadable
    index says "copy it again"; data cut short or with flipped bytes (a checksum fails only
    when a tensor is read) is "damaged", followed by ``fix``. A name the checkpoint lacks is a
    ``NorbertError`` too.
    """
    reader = _open_reader(checkpoint)
    stored = reader.get_variable_to_shape_map()
    names = sorted(stored) if names is None else list(names)
    lacking = [name for name in names if name not in stored]
    if lacking:
        raise NorbertError("checkpoint %s has no variable %s" % (checkpoint, lacking[0]))
    try:
        return {name: reader.get_tensor(name) for name in names}
    except Exception as e:  # tf.errors.* (a checksum), IndexError (data cut short)
        raise NorbertError("checkpoint %s is damaged (%s): %s"
                           % (checkpoint, tf_message(e), fix)) from None


def save_checkpoint(values: Mapping[str, np.ndarray], prefix: str) -> str:
    """A TF checkpoint at ``prefix`` holding ``values`` under their names, readable by
    ``tf.train.init_from_checkpoint`` and Google's code; returns the prefix written. Values are
    fed through placeholders so that a large model does not become constants inside the graph
    (GraphDef's 2 GB limit)."""
    tf = _tf()
    with tf.Graph().as_default():
        variables, assigns, feed = [], [], {}
        for name, value in values.items():
            dtype = tf.as_dtype(np.asarray(value).dtype)  # float32 weights, int64 steps
            var = tf.get_variable(name, shape=value.shape, dtype=dtype,
                                  initializer=tf.zeros_initializer())
            placeholder = tf.placeholder(dtype, shape=value.shape)
            assigns.append(tf.assign(var, placeholder))
            feed[placeholder] = value
            variables.append(var)
        # Relative paths in the "checkpoint" state file: the folder stays valid when moved.
        saver = tf.train.Saver(variables, save_relative_paths=True)
        with tf.Session() as sess:
            sess.run(assigns, feed_dict=feed)
            return saver.save(sess, prefix, write_meta_graph=False)
