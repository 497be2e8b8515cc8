"""The settings of a pretraining run that are its own: what it trains on and with which engine
(``PretrainingConfig``), the optimizer (``OptimizerConfig``) and the TPU (``TpuConfig``).

Each field is a flag of ``scripts/run_pretraining.py``, beside those of ``spec.RunConfig``,
``distribution.DistributionConfig``, ``mixing.MixingConfig`` and
``norbert.model.precision_config.PrecisionConfig``; each config checks itself on construction.
No TensorFlow: the run's plan checks every flag and file before TensorFlow loads.
"""

import dataclasses
from typing import ClassVar, Optional, Tuple

from norbert.data import defaults
from norbert.errors import NorbertError
from norbert.training import length_buckets as buckets_lib
from norbert.training.distribution import check_batch_divides
from norbert.training.mixing import parse_groups

LOOP, TPU_ESTIMATOR = "loop", "tpu_estimator"
ENGINES = (LOOP, TPU_ESTIMATOR)


@dataclasses.dataclass(frozen=True)
class PretrainingConfig:
    """What a run trains and evaluates on, and with which engine."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Data and run"

    # TFRecord files to train on (and evaluate on without eval_input_file): comma-separated
    # paths or globs, as create_pretraining_data.py writes them; or named groups to mix,
    # name=glob,... (nb=data/nb-*,en=data/en-*), with shares from --sampling_exponent or
    # --sampling_weights.
    input_file: str
    # The bert_config.json of the model to train (Google's keys).
    bert_config_file: str
    # Tokens per record; must match the records.
    max_seq_length: int = defaults.MAX_SEQ_LENGTH
    # Masked-LM predictions per record; must match the records.
    max_predictions_per_seq: int = defaults.MAX_PREDICTIONS_PER_SEQ
    # Checkpoint (prefix or folder) to start from, for example Google's bert_model.ckpt; a
    # checkpoint already in output_dir takes precedence, so that a rerun resumes.
    init_checkpoint: Optional[str] = None
    # With init_checkpoint from an earlier phase of the same training (sequence length 512
    # after 128, another batch size): take its optimizer moments as well as its weights (the
    # same optimizer's). Warm-up and decay start again from step 0 unless keep_global_step.
    init_optimizer_state: bool = False
    # With init_checkpoint: go on counting from its global_step, so that the schedule continues
    # where it stopped; num_train_steps is then the total of all phases.
    keep_global_step: bool = False
    # Train for num_train_steps updates (resuming from output_dir's latest checkpoint).
    do_train: bool = False
    # Evaluate the latest checkpoint; the numbers go to output_dir/eval_results.txt.
    do_eval: bool = False
    # Held-out records to evaluate on; unset: input_file. Named groups (name=glob,...) add
    # each group's metrics (masked_lm_accuracy/nb) to the overall ones.
    eval_input_file: Optional[str] = None
    # Batches to evaluate.
    max_eval_steps: int = 100
    # Batches cut to the length their examples need, grouped by length while training: auto
    # (8 equal steps up to max_seq_length: 64,128,...,512 at 512), none (every batch at
    # max_seq_length), or ascending lengths such as 64,128,256 (max_seq_length added last).
    # With buckets, the loop cuts each batch's masked-LM predictions to the number it needs
    # too. TPUEstimator keeps its fixed shape with auto; with a list it builds the model once
    # per length (each compiled once).
    length_buckets: str = buckets_lib.AUTO
    # Without use_tpu: "loop" (norbert's own, CPU/GPU) or "tpu_estimator" (TPUEstimator on
    # the CPU). use_tpu always runs TPUEstimator.
    engine: str = dataclasses.field(default=LOOP, metadata={"choices": ENGINES})

    def __post_init__(self) -> None:
        """Raises ``NorbertError`` naming the flag for settings that cannot work."""
        for flag in ("input_file", "bert_config_file"):
            if not getattr(self, flag):
                raise NorbertError("--%s is required" % flag)
        if self.engine not in ENGINES:
            raise NorbertError("--engine=%s is not known: use one of %s"
                               % (self.engine, ", ".join(ENGINES)))
        for flag in ("init_optimizer_state", "keep_global_step"):
            if getattr(self, flag) and not self.init_checkpoint:
                raise NorbertError("--%s needs --init_checkpoint: the earlier phase's run "
                                   "folder or checkpoint" % flag)
        if self.max_eval_steps < 1:
            raise NorbertError("--max_eval_steps=%d must be at least 1" % self.max_eval_steps)
        buckets_lib.parse(self.length_buckets, self.max_seq_length)
        parse_groups(self.input_file, "--input_file")  # named groups well formed, if any
        if self.eval_input_file:
            parse_groups(self.eval_input_file, "--eval_input_file")


OPTIMIZERS = ("adamw", "adamw_exact", "lamb")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """How the weights are updated: the optimizer, its learning-rate schedule and clipping."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Optimizer"

    # Peak learning rate, reached at the end of warm-up (Google's default; 2e-5 suits
    # continuing from a trained checkpoint, 1e-4 training from scratch).
    learning_rate: float = 5e-5
    # Optimizer updates in all; the learning rate decays to zero at this step.
    num_train_steps: int = 100000
    # Updates of linear warm-up from zero to the peak learning rate (Google's default: a tenth
    # of its default num_train_steps; 0 for none).
    num_warmup_steps: int = 10000
    # "adamw": Google's AdamWeightDecay on TensorFlow's fused Adam kernel (faster);
    # "adamw_exact": the same rule op by op, as Google's code computes it; "lamb": LAMB.
    optimizer: str = dataclasses.field(default="adamw", metadata={"choices": OPTIMIZERS})
    # Decoupled weight decay, applied to every variable but those in exclude_from_weight_decay.
    weight_decay_rate: float = 0.01
    # Decay rate of the first-moment (mean) estimates.
    beta_1: float = 0.9
    # Decay rate of the second-moment (variance) estimates.
    beta_2: float = 0.999
    # Added to the root of the second moment, for numerical stability.
    epsilon: float = 1e-6
    # Global-norm clipping of the (accumulated) gradients; 0 disables it.
    clip_norm: float = 1.0
    # Variables whose names match any of these get no weight decay (nor LAMB's trust ratio).
    exclude_from_weight_decay: Tuple[str, ...] = ("LayerNorm", "layer_norm", "bias")
    # Micro-batches whose gradients are summed into one update: a larger batch in the same
    # memory.
    gradient_accumulation_steps: int = 1
    # Power of the polynomial decay after warm-up; 1.0 is linear, as Google's.
    poly_power: float = 1.0

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise NorbertError(
                "--optimizer=%s is not known: use one of %s"
                % (self.optimizer, ", ".join(OPTIMIZERS))
            )
        if self.learning_rate <= 0:
            raise NorbertError("--learning_rate must be positive, not %g" % self.learning_rate)
        if self.num_train_steps <= 0:
            raise NorbertError("--num_train_steps must be positive, not %d" % self.num_train_steps)
        if self.num_warmup_steps < 0:
            raise NorbertError("--num_warmup_steps must not be negative")
        if self.gradient_accumulation_steps < 1:
            raise NorbertError("--gradient_accumulation_steps must be 1 or more")
        for flag in ("beta_1", "beta_2"):  # the moments' decay: 1 would never move them
            if not 0 <= getattr(self, flag) < 1:
                raise NorbertError("--%s=%g must be in [0, 1), for example %g"
                                   % (flag, getattr(self, flag), getattr(OptimizerConfig, flag)))
        if self.epsilon <= 0:  # a weight never given a gradient would be updated by 0 / 0
            raise NorbertError("--epsilon=%g must be positive, for example 1e-6" % self.epsilon)
        if self.weight_decay_rate < 0:
            raise NorbertError("--weight_decay_rate=%g must not be negative (0: no decay)"
                               % self.weight_decay_rate)
        if self.clip_norm < 0:
            raise NorbertError("--clip_norm=%g must not be negative (0: no clipping)"
                               % self.clip_norm)
        if self.poly_power < 0:  # the rate would grow without bound as the decay ends
            raise NorbertError("--poly_power=%g must not be negative (1.0: linear decay, 0: a "
                               "constant rate)" % self.poly_power)


@dataclasses.dataclass(frozen=True)
class TpuConfig:
    """Where a TPUEstimator run goes: Google's TPU flags."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "TPU"

    # Train on a Cloud TPU through TPUEstimator; without it, --engine=tpu_estimator runs
    # TPUEstimator on the CPU.
    use_tpu: bool = False
    # The Cloud TPU's name, or a grpc:// address.
    tpu_name: Optional[str] = None
    # The TPU's GCE zone; looked up from the metadata server when unset.
    tpu_zone: Optional[str] = None
    # The TPU's GCP project; looked up from the metadata server when unset.
    gcp_project: Optional[str] = None
    # A TPU master address, instead of tpu_name.
    master: Optional[str] = None
    # TPU cores the batch is split over (8 for a v2-8 or v3-8); used with use_tpu only.
    num_tpu_cores: int = 8
    # Steps per call to the TPU before control returns to the host.
    iterations_per_loop: int = 1000

    def __post_init__(self) -> None:
        for flag in ("num_tpu_cores", "iterations_per_loop"):
            if getattr(self, flag) < 1:
                raise NorbertError("--%s=%d must be at least 1" % (flag, getattr(self, flag)))

    def check_batch_divides(self, batch_size: int, flag: str) -> None:
        """On a TPU, the batch ``flag`` sets is split evenly over the cores (TPUEstimator's
        per-host input yields one core's share)."""
        if self.use_tpu:
            check_batch_divides(batch_size, self.num_tpu_cores, flag,
                                "--num_tpu_cores=%d" % self.num_tpu_cores, "core")

    def input_batch_size(self, batch_size: int) -> int:
        """The batch each call of TPUEstimator's input yields for the global ``batch_size``:
        one core's on a TPU (PER_HOST_V2 input, ``make_estimator``), the whole on the CPU."""
        return batch_size // self.num_tpu_cores if self.use_tpu else batch_size
