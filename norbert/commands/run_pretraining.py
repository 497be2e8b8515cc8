"""Pretrains BERT, or continues pretraining a Google checkpoint: Google's flags, and more.

    norbert-run-pretraining --input_file=data/train.tfrecord --output_dir=out \\
        --do_train --do_eval --bert_config_file=bert_config.json \\
        --init_checkpoint=multi_cased_L-12_H-768_A-12/bert_model.ckpt \\
        --train_batch_size=32 --max_seq_length=128 --max_predictions_per_seq=20 \\
        --num_train_steps=20000 --num_warmup_steps=10 --learning_rate=2e-5

``python scripts/run_pretraining.py`` takes the same flags. On CPU/GPU it runs norbert's own
loop; with --use_tpu, Google's TPUEstimator (TF 2.15 or 1.15).
"""

from norbert.commands import flags

# Named, not imported: --help and a flag's parse read them without importing their modules.
CONFIGS = (
    "norbert.training.config:PretrainingConfig",
    "norbert.training.config:OptimizerConfig",
    "norbert.training.spec:RunConfig",
    "norbert.training.config:TpuConfig",
    "norbert.model.precision_config:PrecisionConfig",
    "norbert.training.distribution:DistributionConfig",
    "norbert.training.mixing:MixingConfig",
)


def main(argv):
    del argv  # flags.run refuses positional arguments
    from absl import logging

    # No TensorFlow yet: run_pretraining loads it once its plan has checked every flag and file.
    from norbert.model.precision_config import PrecisionConfig
    from norbert.training.config import OptimizerConfig, PretrainingConfig, TpuConfig
    from norbert.training.distribution import DistributionConfig
    from norbert.training.mixing import MixingConfig
    from norbert.training.pretraining import run_pretraining
    from norbert.training.spec import RunConfig

    logging.set_verbosity(logging.INFO)
    run_pretraining(
        flags.config_from_flags(PretrainingConfig),
        flags.config_from_flags(OptimizerConfig),
        flags.config_from_flags(RunConfig),
        flags.config_from_flags(TpuConfig),
        flags.config_from_flags(PrecisionConfig),
        flags.config_from_flags(DistributionConfig),
        flags.config_from_flags(MixingConfig),
    )


def run():
    """The ``norbert-run-pretraining`` command."""
    flags.run(main, CONFIGS)
