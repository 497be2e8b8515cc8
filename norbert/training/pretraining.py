"""Pretraining end to end: checks, then training and evaluation on the chosen engine.

``run_pretraining`` is what ``scripts/run_pretraining.py`` calls, and what a notebook calls.
Everything that can be checked before a graph exists is checked first, so that a wrong flag
costs a second, not a TPU-hour: the config against the sequence length, the records against
the flags, the init checkpoint's existence.
"""

import dataclasses
import os
import warnings
from typing import Dict, Optional

from absl import logging

from norbert import fileio

from norbert.model import checkpoints

from norbert.training import input_pipeline

from norbert.training import loop
from norbert.model.bert_config import BertConfig
from norbert.errors import NorbertError
from norbert.training.model_fn import ModelFnConfig, build_model_fn
from norbert.training.optimization import OptimizerConfig
from norbert.model.precision import FP16, PrecisionConfig
from norbert.training.spec import RunConfig
from norbert.settings import make_configs
from norbert.training.tpu import TpuConfig, make_estimator

LOOP, TPU_ESTIMATOR = "loop", "tpu_estimator"


class TrainingWarning(UserWarning):
    """A setting that experience says is probably a mistake."""


@dataclasses.dataclass(frozen=True)
class PretrainingConfig:
    input_file: str  # records to train on: comma-separated files or globs
    bert_config_file: str  # Google's bert_config.json
    max_seq_length: int = 128  # must match the records
    max_predictions_per_seq: int = 20  # must match the records
    init_checkpoint: Optional[str] = None  # seeds the model unless output_dir has a checkpoint
    do_train: bool = False
    do_eval: bool = False
    eval_input_file: Optional[str] = None  # records to evaluate on; None: input_file
    max_eval_steps: int = 100
    engine: str = LOOP  # "loop" (CPU/GPU) or "tpu_estimator" (implied by use_tpu)


def _warn(message: str) -> None:
    warnings.warn(message, TrainingWarning, stacklevel=3)


def guidance(config: PretrainingConfig, optimizer: OptimizerConfig) -> None:
    """Warnings for settings that users' experience says are usually wrong."""
    lr = optimizer.learning_rate
    if config.do_train and config.init_checkpoint and lr > 1e-4:
        _warn(
            "--learning_rate=%g is high for continuing from --init_checkpoint: it can undo what "
            "the model knows; 2e-5 is the usual choice" % lr
        )
    if config.do_train and not config.init_checkpoint and lr < 1e-5:
        _warn("--learning_rate=%g is very low for training from scratch (1e-4 is usual)" % lr)
    if config.do_train and optimizer.num_train_steps < optimizer.num_warmup_steps:
        _warn(
            "--num_train_steps=%d is smaller than --num_warmup_steps=%d: the learning rate "
            "never reaches its peak" % (optimizer.num_train_steps, optimizer.num_warmup_steps)
        )
    if config.do_eval and config.do_train and (config.eval_input_file or config.input_file) == config.input_file:
        _warn(
            "evaluating on the training data: the numbers measure memorisation; pass held-out "
            "records with --eval_input_file"
        )


def run_pretraining(
    config: Optional[PretrainingConfig] = None,
    optimizer: Optional[OptimizerConfig] = None,
    run: Optional[RunConfig] = None,
    tpu: Optional[TpuConfig] = None,
    precision: Optional[PrecisionConfig] = None,
    **settings,
) -> Dict[str, object]:
    """Trains and/or evaluates; returns the eval results (also written to eval_results.txt).

    Takes the five config objects, or any of their fields as keywords, named as the flags of
    ``scripts/run_pretraining.py``: ``run_pretraining(input_file=..., bert_config_file=...,
    output_dir=..., do_train=True, learning_rate=1e-4, num_train_steps=1000)``.
    """
    config, optimizer, run, tpu, precision = make_configs(
        "run_pretraining",
        dict(config=config, optimizer=optimizer, run=run, tpu=tpu, precision=precision),
        settings, [PretrainingConfig, OptimizerConfig, RunConfig, TpuConfig, PrecisionConfig])
    if not config.do_train and not config.do_eval:
        raise NorbertError("nothing to do: pass --do_train, --do_eval or both")
    fileio.check_writable_dir(run.output_dir, "--output_dir")
    if tpu.use_tpu and precision.precision == FP16:
        raise NorbertError("--precision=fp16 is for GPUs; TPUs compute in bfloat16: use "
                           "--precision=bf16 with --use_tpu")
    bert_config = BertConfig.from_json_file(config.bert_config_file)
    if config.max_seq_length > bert_config.max_position_embeddings:
        raise NorbertError(
            "--max_seq_length=%d is longer than the model's max_position_embeddings=%d (%s): "
            "use a shorter --max_seq_length"
            % (config.max_seq_length, bert_config.max_position_embeddings, config.bert_config_file)
        )
    engine = TPU_ESTIMATOR if tpu.use_tpu else config.engine
    resuming = loop.latest_checkpoint(run.output_dir) is not None
    init_checkpoint = None
    if config.init_checkpoint and not resuming:
        init_checkpoint = checkpoints.resolve(config.init_checkpoint)
    guidance(config, optimizer)

    def input_fn_for(spec: str, is_training: bool, flag: str):
        files = input_pipeline.record_files(spec, flag)
        input_config = input_pipeline.InputConfig(
            input_files=files,
            max_seq_length=config.max_seq_length,
            max_predictions_per_seq=config.max_predictions_per_seq,
            is_training=is_training,
            seed=run.seed,
        )
        input_pipeline.check_data(input_config)
        return input_pipeline.make_input_fn(input_config)

    train_input_fn = eval_input_fn = None
    if config.do_train:
        train_input_fn = input_fn_for(config.input_file, True, "--input_file")
    if config.do_eval:
        spec = config.eval_input_file or config.input_file
        flag = "--eval_input_file" if config.eval_input_file else "--input_file"
        eval_input_fn = input_fn_for(spec, False, flag)

    model_fn = build_model_fn(
        ModelFnConfig(
            bert_config=bert_config,
            optimizer=optimizer,
            use_tpu=tpu.use_tpu,
            use_one_hot_embeddings=tpu.use_tpu,
            loss_scale=precision.loss_scaling(),
            precision=precision.precision,
        )
    )
    params = {"init_checkpoint": init_checkpoint}
    result: Dict[str, object] = {}
    if engine == TPU_ESTIMATOR:
        estimator = make_estimator(model_fn, run, tpu, params)
        if config.do_train:
            estimator.train(input_fn=train_input_fn, max_steps=optimizer.num_train_steps)
        if config.do_eval:
            result = estimator.evaluate(input_fn=eval_input_fn, steps=config.max_eval_steps)
    else:
        if config.do_train:
            loop.train(model_fn, train_input_fn, params, run, optimizer.num_train_steps)
        if config.do_eval:
            checkpoint = loop.latest_checkpoint(run.output_dir) or init_checkpoint
            if checkpoint is None:
                raise NorbertError(
                    "--do_eval: no checkpoint to evaluate in --output_dir=%s; train first or "
                    "pass --init_checkpoint" % run.output_dir
                )
            result = loop.evaluate(
                model_fn, eval_input_fn, params, run, checkpoint, config.max_eval_steps
            )
    if config.do_eval:
        loop.write_eval_results(os.path.join(run.output_dir, "eval_results.txt"), result)
        for key in sorted(result):
            logging.info("  %s = %s", key, result[key])
    return result
