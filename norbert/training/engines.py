"""The engines a run plan is handed to: norbert's loop (one device, mirrored replicas, several
workers) and TPUEstimator (a TPU, or the CPU). Each trains, then evaluates, and returns the
eval results; the plan (``norbert.training.pretraining``) decided everything before.

A stop signal (``norbert.training.stop``) during training saves a checkpoint and raises
``KeyboardInterrupt`` (the signal's name) without evaluating: the run is not finished, and a job
scheduler must see that through the exit status.
"""

import os
from typing import Callable, Dict

import tensorflow.compat.v1 as tf
from absl import logging

from norbert.errors import NorbertError
from norbert.training import loop
from norbert.training.spec import RunConfig
from norbert.training.stop import StopSignals
from norbert.training.tpu import (PositionHook, StopHook, make_estimator, numbered,
                                  point_at_intact)

Results = Dict[str, object]


def add_group(result: Results, name: str, found: Results) -> None:
    """One eval group's metrics into ``result``, as ``<metric>/<name>``."""
    result.update(("%s/%s" % (key, name), value) for key, value in found.items()
                  if key != "global_step")


def _stopped(global_step: int, max_steps: int, checkpoint: str, signal_name: str):
    """Saved, but not finished: no evaluation, and the caller must see that the run has more
    to do."""
    logging.warning("stopped at step %d of %d (%s saved): run the same command again to go on",
                    global_step, max_steps, checkpoint)
    raise KeyboardInterrupt(signal_name)


def on_loop(plan, settings, model_fn: Callable, stop: StopSignals) -> Results:
    """Training and evaluation on norbert's loop."""
    run, max_steps = settings.run, settings.optimizer.num_train_steps
    checkpoint = plan.start.resume[0] if plan.start.resume else None
    if plan.train is not None:
        trained = loop.train(model_fn, plan.train.input_fn, {}, run, max_steps,
                             settings.distribution, plan.cluster, start=plan.start, stop=stop,
                             position=plan.position)
        if trained.interrupted:
            _stopped(trained.global_step, max_steps, trained.checkpoint, trained.stopped_by)
        checkpoint = trained.checkpoint
    if plan.evaluation is None:
        return {}
    if not plan.chief:
        logging.info("worker %d: training done; the chief evaluates", plan.cluster.task_id)
        return {}
    stop.check()
    result: Results = {}
    for name, input_fn in [(None, plan.evaluation.input_fn)] + list(plan.evaluation.groups):
        found = loop.evaluate(
            model_fn, input_fn, {}, run, checkpoint or plan.start.init_checkpoint,
            settings.config.max_eval_steps,
            # An --init_checkpoint is evaluated as Google's script does: its trainable
            # variables only, so global_step is 0 (the run's own checkpoints keep theirs).
            restore_step=checkpoint is not None, stop=stop)
        if name is None:
            result = found
        else:
            add_group(result, name, found)
    write_eval_results(run, result)
    return result


def on_estimator(plan, settings, model_fn: Callable, stop: StopSignals) -> Results:
    """Training and evaluation on TPUEstimator (it resumes from --output_dir itself: from the
    newest checkpoint that reads whole, with the data position saved beside it)."""
    run = settings.run
    estimator = make_estimator(model_fn, run, settings.tpu, plan.start)
    max_steps, eval_steps = settings.optimizer.num_train_steps, settings.config.max_eval_steps
    result: Results = {}
    input_fn = None
    hooks = [StopHook(stop)]
    try:
        if plan.train is not None:
            point_at_intact(run.output_dir, plan.start.resume)
            train_hooks, listeners = list(hooks), []
            if plan.position is not None:
                positions = PositionHook(plan.position, run.output_dir, run.keep_checkpoint_max)
                train_hooks.append(positions)
                listeners.append(positions.listener())
            input_fn = numbered(plan.train.input_fn)  # dropout keyed by the batches' numbers
            estimator.train(input_fn=input_fn, max_steps=max_steps, hooks=train_hooks,
                            saving_listeners=listeners)
            if stop.received:
                _stopped(estimator.get_variable_value("global_step"), max_steps,
                         estimator.latest_checkpoint(), stop.received)
        if plan.evaluation is not None:
            input_fn = plan.evaluation.input_fn
            result = estimator.evaluate(input_fn=input_fn, steps=eval_steps, hooks=hooks)
            for name, input_fn in plan.evaluation.groups:
                add_group(result, name, estimator.evaluate(
                    input_fn=input_fn, steps=eval_steps, name=name, hooks=hooks))
            stop.check()
    except tf.errors.DataLossError as e:
        raise NorbertError("%s; replace or rebuild that file and run again"
                           % loop.describe_data_loss(e, input_fn, "input")) from None
    if plan.evaluation is not None:
        write_eval_results(settings.run, result)
    return result


def write_eval_results(run: RunConfig, result: Results) -> None:
    loop.write_eval_results(os.path.join(run.output_dir, "eval_results.txt"), result)
