"""The training data's position: saved with every checkpoint, restored when a run resumes.

A run's training input is one tf.data iterator per worker; its state is the pipeline's own: the
order of the files, the offsets read in them, the shuffle buffers, the mixing draws, and the
batch numbers that seed dynamic masks and pairs. TensorFlow saves such a state (tf.data's
iterator checkpointing). Each worker saves its iterator at every checkpoint step, before the
model's checkpoint is written, into ::

    <output_dir>/data_position/worker-<K>/position-<step>.index, .data-00000-of-00001

together with the stream's identity (``Stream``, JSON). A resume restores the position saved at
the resumed checkpoint's step when the identity fits the run's setup, and the run trains on
exactly the batches an uninterrupted run would have trained on next. What is saved is the
pipeline's buffers (a shuffle buffer of records, a batch or two being prefetched), not the
data read so far: resuming at step 1,000,000 costs what resuming at step 10 costs.

The model's checkpoints stay Google's (the position is a checkpoint of its own beside them); the
chief writes the model's, every worker its own position. ``decide`` is the run plan's rule:
continue, or restart (and why), in one line of the plan's block.
"""

import dataclasses
import hashlib
import json
import os
import random
from typing import Dict, List, Optional, Sequence, Tuple

FOLDER = "data_position"
_PREFIX = "position"
_STREAM_KEY = "data_stream"  # the identity's name inside a position checkpoint
_FORMAT = 1
# TPUEstimator's batch per input call (per TPU core on a TPU: --train_batch_size over
# --num_tpu_cores): part of its setup.
CORE_BATCH = "examples per TPU core batch"
# Parts of the setup recorded later than the positions' format: a position saved before one
# was recorded continues as it did then (its run's TPU positions are not all restarted once).
ADDED_LATER = (CORE_BATCH,)


def position_dir(output_dir: str, worker: int) -> str:
    return os.path.join(output_dir, FOLDER, "worker-%d" % worker)


def position_path(output_dir: str, worker: int, step: int) -> str:
    """The prefix of worker ``worker``'s position at ``step`` (``.index`` and data files)."""
    return os.path.join(position_dir(output_dir, worker), "%s-%d" % (_PREFIX, step))


def checkpoint_step(checkpoint: str) -> Optional[int]:
    """The step in a checkpoint prefix's name (``model.ckpt-1000``), or None."""
    tail = checkpoint.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


@dataclasses.dataclass(frozen=True)
class Stream:
    """What a saved position belongs to: the seeds, and everything that shapes the batches.

    ``setup``: (what, value) pairs, ``what`` named as the user knows it (a flag, mostly); a
    position continues only under the same setup. ``run_seed`` is ``--seed`` (or the seed drawn
    when the run began, kept here); ``stream_seed`` is what the shuffles, masks and pairs draw
    from: the run's seed, or, after a restart of the stream, one made of it and that step.
    """

    run_seed: int
    stream_seed: int
    setup: Tuple[Tuple[str, str], ...]

    def to_json(self) -> str:
        return json.dumps({"format": _FORMAT, "run_seed": self.run_seed,
                           "stream_seed": self.stream_seed, "setup": dict(self.setup)},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Optional["Stream"]:
        """The stream a position was saved with; None when it is not one this code wrote."""
        try:
            data = json.loads(text)
            if data.get("format") != _FORMAT:
                return None
            return cls(int(data["run_seed"]), int(data["stream_seed"]),
                       tuple(sorted((str(k), str(v)) for k, v in data["setup"].items())))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def changes_from(self, saved: "Stream") -> List[str]:
        """What differs in this setup from ``saved``'s, one phrase each (a part recorded only
        since ``ADDED_LATER`` counts as unchanged when ``saved`` predates it)."""
        before, now = dict(saved.setup), dict(self.setup)
        for what in ADDED_LATER:
            if what not in before:
                now.pop(what, None)
        return ["%s %s -> %s" % (what, before.get(what, "unset"), now.get(what, "unset"))
                for what in sorted(set(before) | set(now)) if before.get(what) != now.get(what)]


def setup_of(input_config, worker_batch_size: int, workers: int, numbered: bool = False,
             core_batch_size: Optional[int] = None) -> Tuple[Tuple[str, str], ...]:
    """The stream's setup: what a saved position is only valid under.

    ``input_config``: the training ``InputConfig``; ``worker_batch_size``: the batch one
    worker's iterator yields (the global batch over the workers). The number of replicas on a
    worker is not part of it: a worker's iterator yields the worker's whole batch, and its
    replicas take their slices of it, so 1 device and 2 replicas read the same stream.
    ``numbered``: the iterator numbers its batches for dropout (TPUEstimator's,
    ``tpu.numbered``); its state then holds a count that a position saved without one lacks.
    ``core_batch_size``: TPUEstimator's, the batch its input yields (per TPU core on a TPU):
    the iterator's prefetched batches are saved with that shape, so another number of cores
    cannot take them.
    """
    c = input_config
    files = [list(g.files) for g in c.groups] if c.groups else [list(c.input_files)]
    setup = {
        "--input_file": "%d files (%s)" % (sum(len(f) for f in files), _digest(files)),
        "examples per worker batch": str(worker_batch_size),
        "workers": str(workers),
        "--max_seq_length": str(c.max_seq_length),
        "--max_predictions_per_seq": str(c.max_predictions_per_seq),
        "shuffle buffer": str(c.shuffle_buffer),
        "files read at once": str(c.num_cpu_threads),
        "dynamic masks": _described(c.masking),
        "dynamic pairs": _described(c.pairing),
        "mixing": ", ".join("%s=%.6g" % (g.name, g.share) for g in c.groups)
        if c.groups else "none",
    }
    if len(c.length_buckets) > 1:  # absent without buckets: positions saved before them hold
        setup["--length_buckets"] = ",".join(str(b) for b in c.length_buckets)
    if numbered:  # absent on the loop: its positions hold as they were
        setup["batches numbered for dropout"] = "yes (TPUEstimator)"
    if core_batch_size is not None:
        setup[CORE_BATCH] = str(core_batch_size)
    return tuple(sorted(setup.items()))


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value).encode("utf-8")).hexdigest()[:12]


def _described(config) -> str:
    return "none" if config is None else repr(config)


def derived_seed(run_seed: int, step: int) -> int:
    """The stream's seed after a restart at ``step``: another order than the run's first, so
    that a restarted stream does not repeat the batches the run began with."""
    return int.from_bytes(hashlib.sha256(b"%d/%d" % (run_seed, step)).digest()[:4], "big") \
        >> 1  # 31 bits, as tf.data's seeds and the drawn ones


@dataclasses.dataclass(frozen=True)
class Position:
    """What a training run does with its data position: decided by the run plan (``decide``)."""

    # This run's stream: its seeds and setup, saved with every checkpoint.
    stream: Stream
    # This worker's number: its positions are its own.
    worker: int = 0
    # Restore the position saved with the resumed checkpoint (when it is still there and its
    # stream is this one); False: the stream starts at its beginning.
    restore: bool = False
    # One line for the run plan's block: what happens to the data position, and why.
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Saved:
    """What a resumed checkpoint has: its step, and each worker's saved stream (None where a
    worker's position is missing or unreadable)."""

    checkpoint: str
    step: int
    streams: Tuple[Optional[Stream], ...]


def read_saved(output_dir: str, checkpoint: str, workers: int) -> Optional[Saved]:
    """The positions saved with ``checkpoint`` (one per worker), or None if its name has no
    step."""
    step = checkpoint_step(checkpoint)
    if step is None:
        return None
    return Saved(checkpoint, step,
                 tuple(read_stream(position_path(output_dir, w, step)) for w in range(workers)))


def read_stream(prefix: str) -> Optional[Stream]:
    """The stream saved in position ``prefix``, or None when there is none (or it is damaged)."""
    import tensorflow.compat.v1 as tf

    try:
        if not tf.io.gfile.exists(prefix + ".index"):
            return None
        value = tf.train.load_checkpoint(prefix).get_tensor(_STREAM_KEY)
    except (tf.errors.OpError, ValueError):
        return None
    return Stream.from_json(value.decode("utf-8") if isinstance(value, bytes) else str(value))


def decide(setup: Tuple[Tuple[str, str], ...], seed: Optional[int], saved: Optional[Saved],
           worker: int, resume_position: bool, rng: random.Random) -> Position:
    """Continue the saved stream, or start one (and say why): the run plan's rule.

    ``seed``: ``--seed`` (None: the saved run's, else one drawn from ``rng``). ``saved``: the
    positions of the checkpoint the run resumes (None: a new run).
    """
    def fresh(run_seed: int, stream_seed: int, note: str, restore: bool = False) -> Position:
        return Position(Stream(run_seed, stream_seed, setup), worker, restore, note)

    own = "--seed=%d" % seed if seed is not None else None
    if saved is None:
        run_seed = seed if seed is not None else rng.getrandbits(31)
        return fresh(run_seed, run_seed, "data: a new stream, seed %d (%s)" % (
            run_seed, own or "drawn now; kept with the data position, so a resume goes on"))
    where = "model.ckpt-%d" % saved.step
    mine = saved.streams[worker] if worker < len(saved.streams) else None
    if not resume_position:
        run_seed = seed if seed is not None else (mine.run_seed if mine else
                                                  rng.getrandbits(31))
        return fresh(run_seed, run_seed, "data: starts again from its beginning at step %d, "
                     "seed %d (--resume_data_position=false)" % (saved.step, run_seed))
    missing = [w for w, s in enumerate(saved.streams) if s is None]
    reason = None
    if missing:
        reason = ("%s has no data position%s (saved before norbert kept one, or the run ended "
                  "while saving it)" % (where, "" if len(saved.streams) == 1 else
                                        " of worker %s" % ", ".join(map(str, missing))))
    else:
        changes = Stream(0, 0, setup).changes_from(mine)
        if seed is not None and seed != mine.run_seed:
            changes.insert(0, "--seed %d -> %d" % (mine.run_seed, seed))
        if changes:
            reason = "the setup changed since %s: %s" % (where, "; ".join(changes))
    if reason is None:
        return fresh(mine.run_seed, mine.stream_seed, "data: continues where %s left it "
                     "(seed %d%s)" % (where, mine.run_seed, "" if seed is not None else
                                      ", the run's own, kept with its data position"),
                     restore=True)
    run_seed = seed if seed is not None else (mine.run_seed if mine else rng.getrandbits(31))
    stream_seed = derived_seed(run_seed, saved.step)
    return fresh(run_seed, stream_seed, "data: restarts at step %d in a new order (seed %d "
                 "made of %d and the step, so the first batches are not repeated): %s"
                 % (saved.step, stream_seed, run_seed, reason))


class PositionSaver:
    """Saves and restores one worker's iterators with its stream (graph-building time): its
    input iterator, or those of a TPU pod's input hosts (all in the one graph), together."""

    def __init__(self, iterators: Sequence, position: Position, output_dir: str, keep: int):
        import tensorflow.compat.v1 as tf

        self._position, self._output_dir = position, output_dir
        saveables = [tf.data.experimental.make_saveable_from_iterator(i) for i in iterators]
        # Kept out of every collection: the model's Saver must not see it (Google's names).
        self._stream = tf.Variable(position.stream.to_json(), trainable=False, collections=[],
                                   name=_STREAM_KEY)
        self._saver = tf.train.Saver(saveables + [self._stream], max_to_keep=keep,
                                     save_relative_paths=True)
        self._iterators = len(iterators)
        self.initializers = [self._stream.initializer]

    def save(self, sess, step: int) -> str:
        """Writes this worker's position at ``step``; older ones beyond ``keep`` go."""
        import tensorflow.compat.v1 as tf

        folder = position_dir(self._output_dir, self._position.worker)
        tf.io.gfile.makedirs(folder)
        return self._saver.save(sess, position_path(self._output_dir, self._position.worker,
                                                    step), write_meta_graph=False)

    def restore(self, sess, step: int) -> Optional[str]:
        """Restores the position saved at ``step`` when the plan says so and its stream is this
        run's; returns a line saying what happened (None: nothing to say)."""
        import tensorflow.compat.v1 as tf

        prefix = position_path(self._output_dir, self._position.worker, step)
        self._track(step)
        if not self._position.restore:
            return None
        saved = read_stream(prefix)
        if saved != self._position.stream:  # the plan looked at a newer checkpoint than this
            return ("data: %s at step %d (an older checkpoint than planned was resumed): the "
                    "stream starts at its beginning"
                    % ("no data position was saved" if saved is None else
                       "the data position saved is another stream's", step))
        saved_iterators = len(tf.train.list_variables(prefix)) - 1  # all but the stream
        if saved_iterators != self._iterators:
            return ("data: the position saved at step %d holds %d input iterators, this run has "
                    "%d (another number of TPU input hosts): the stream starts at its beginning"
                    % (step, saved_iterators, self._iterators))
        try:
            self._saver.restore(sess, prefix)
        except tf.errors.OpError as e:
            return ("data: the position saved at step %d does not restore (%s): the stream "
                    "starts at its beginning" % (step, str(e).splitlines()[0][:200]))
        return "data: restored the position of step %d" % step

    def _track(self, step: int) -> None:
        """The positions already in the folder, up to ``step``, are this saver's to delete as
        it saves newer ones (as the model's saver does with its checkpoints)."""
        import tensorflow.compat.v1 as tf

        found = []
        for index in tf.io.gfile.glob(position_path(self._output_dir, self._position.worker,
                                                    0)[:-1] + "*.index"):
            prefix = index[:-len(".index")]
            number = checkpoint_step(prefix)
            if number is not None and number <= step:
                found.append((number, prefix))
        self._saver.recover_last_checkpoints([p for _, p in sorted(found)])


def saved_bytes(output_dir: str, worker: int, step: int) -> Dict[str, int]:
    """The files of one saved position and their sizes (for BENCHMARKS.md's figure and tests)."""
    import tensorflow.compat.v1 as tf

    prefix = position_path(output_dir, worker, step)
    return {path: tf.io.gfile.stat(path).length for path in tf.io.gfile.glob(prefix + ".*")}
