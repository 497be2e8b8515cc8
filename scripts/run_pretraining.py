"""Pretrain BERT, or continue pretraining a Google checkpoint: Google's flags, and more.

    python scripts/run_pretraining.py --input_file=data/train.tfrecord \\
        --output_dir=out --do_train --do_eval --bert_config_file=bert_config.json \\
        --init_checkpoint=multi_cased_L-12_H-768_A-12/bert_model.ckpt \\
        --train_batch_size=32 --max_seq_length=128 --max_predictions_per_seq=20 \\
        --num_train_steps=20000 --num_warmup_steps=10 --learning_rate=2e-5

On CPU/GPU it runs norbert's own loop; with --use_tpu, Google's TPUEstimator (TF 2.15 or 1.15).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from norbert import cli  # noqa: E402
from norbert.errors import NorbertError  # noqa: E402

FLAGS = flags.FLAGS

# Google's flags: same names, same defaults.
flags.DEFINE_string("bert_config_file", None, "The bert_config.json of the model to train.")
flags.DEFINE_string("input_file", None, "TFRecord files: comma-separated paths or globs.")
flags.DEFINE_string("output_dir", None, "Where checkpoints, events and eval results go.")
flags.DEFINE_string("init_checkpoint", None, "Checkpoint (prefix or folder) to start from.")
flags.DEFINE_integer("max_seq_length", 128, "Sequence length of the records.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked-LM predictions per record.")
flags.DEFINE_bool("do_train", False, "Train.")
flags.DEFINE_bool("do_eval", False, "Evaluate the latest checkpoint.")
flags.DEFINE_integer("train_batch_size", 32, "Batch size for training (all cores together).")
flags.DEFINE_integer("eval_batch_size", 8, "Batch size for evaluation.")
flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate.")
flags.DEFINE_integer("num_train_steps", 100000, "Optimizer updates in all.")
flags.DEFINE_integer("num_warmup_steps", 10000, "Updates of linear warm-up.")
flags.DEFINE_integer("save_checkpoints_steps", 1000, "Updates between checkpoints.")
flags.DEFINE_integer("iterations_per_loop", 1000, "TPU: steps per call to the TPU.")
flags.DEFINE_integer("max_eval_steps", 100, "Batches to evaluate.")
flags.DEFINE_bool("use_tpu", False, "Train on a Cloud TPU through TPUEstimator.")
flags.DEFINE_string("tpu_name", None, "The Cloud TPU's name (or grpc:// address).")
flags.DEFINE_string("tpu_zone", None, "The TPU's GCE zone (found automatically if unset).")
flags.DEFINE_string("gcp_project", None, "The TPU's project (found automatically if unset).")
flags.DEFINE_string("master", None, "TPU master address, instead of --tpu_name.")
flags.DEFINE_integer("num_tpu_cores", 8, "TPU cores in use (8 for a v2-8/v3-8).")

# norbert's own.
flags.DEFINE_string("eval_input_file", None, "Held-out records for --do_eval (default: --input_file).")
flags.DEFINE_enum("optimizer", "adamw", ["adamw", "adamw_exact", "lamb"],
                  "Google's AdamWeightDecay (adamw: on TensorFlow's fused Adam kernel, faster; "
                  "adamw_exact: op by op as Google's code), or LAMB.")
flags.DEFINE_integer("gradient_accumulation_steps", 1, "Micro-batches summed per update.")
flags.DEFINE_float("weight_decay_rate", 0.01, "Decoupled weight decay.")
flags.DEFINE_float("clip_norm", 1.0, "Global-norm gradient clipping (0: none).")
flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept in --output_dir.")
flags.DEFINE_integer("log_every_steps", 100, "Updates between log lines and TensorBoard points.")
flags.DEFINE_bool("use_xla", False, "XLA JIT compilation (CPU/GPU loop).")
flags.DEFINE_enum("precision", "fp32", ["fp32", "bf16", "fp16"],
                  "Arithmetic: fp32; bf16 (TPU, recent CPUs/GPUs); fp16 (GPU, loss-scaled). "
                  "Variables and checkpoints stay float32.")
flags.DEFINE_float("loss_scale", 0.0, "--precision=fp16: fixed loss scale, or 0 for dynamic.")
flags.DEFINE_integer("seed", None, "Graph seed for initialisation, dropout and shuffling.")
flags.DEFINE_enum("engine", "loop", ["loop", "tpu_estimator"],
                  "Without --use_tpu: norbert's loop, or TPUEstimator on the CPU.")


def main(argv):
    del argv
    from absl import logging

    from norbert.training.optimization import OptimizerConfig
    from norbert.model.precision import PrecisionConfig
    from norbert.training.spec import RunConfig
    from norbert.training.tpu import TpuConfig
    from norbert.training.pretraining import PretrainingConfig, run_pretraining

    logging.set_verbosity(logging.INFO)
    for name in ("bert_config_file", "input_file", "output_dir"):
        if not getattr(FLAGS, name):
            raise NorbertError("--%s is required" % name)
    config = PretrainingConfig(
        input_file=FLAGS.input_file,
        bert_config_file=FLAGS.bert_config_file,
        max_seq_length=FLAGS.max_seq_length,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq,
        init_checkpoint=FLAGS.init_checkpoint,
        do_train=FLAGS.do_train,
        do_eval=FLAGS.do_eval,
        eval_input_file=FLAGS.eval_input_file,
        max_eval_steps=FLAGS.max_eval_steps,
        engine=FLAGS.engine,
    )
    optimizer = OptimizerConfig(
        learning_rate=FLAGS.learning_rate,
        num_train_steps=FLAGS.num_train_steps,
        num_warmup_steps=FLAGS.num_warmup_steps,
        optimizer=FLAGS.optimizer,
        weight_decay_rate=FLAGS.weight_decay_rate,
        clip_norm=FLAGS.clip_norm,
        gradient_accumulation_steps=FLAGS.gradient_accumulation_steps,
    )
    run = RunConfig(
        output_dir=FLAGS.output_dir,
        save_checkpoints_steps=FLAGS.save_checkpoints_steps,
        keep_checkpoint_max=FLAGS.keep_checkpoint_max,
        log_every_steps=FLAGS.log_every_steps,
        train_batch_size=FLAGS.train_batch_size,
        eval_batch_size=FLAGS.eval_batch_size,
        use_xla=FLAGS.use_xla,
        seed=FLAGS.seed,
    )
    tpu = TpuConfig(
        use_tpu=FLAGS.use_tpu,
        tpu_name=FLAGS.tpu_name,
        tpu_zone=FLAGS.tpu_zone,
        gcp_project=FLAGS.gcp_project,
        master=FLAGS.master,
        num_tpu_cores=FLAGS.num_tpu_cores,
        iterations_per_loop=FLAGS.iterations_per_loop,
    )
    precision = PrecisionConfig(precision=FLAGS.precision, loss_scale=FLAGS.loss_scale)
    run_pretraining(config, optimizer, run, tpu, precision)


if __name__ == "__main__":
    cli.run(main)
