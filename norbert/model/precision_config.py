"""The precision settings of a run: ``--precision`` (fp32, bf16, fp16) and fp16's loss scaling.

What ``norbert.model.precision`` computes with, apart from it so that a run's settings are made
and checked without TensorFlow (a wrong flag is answered before TensorFlow loads).
"""

import dataclasses
from typing import ClassVar, Union

from norbert.errors import NorbertError

FP32, BF16, FP16 = "fp32", "bf16", "fp16"
PRECISIONS = (FP32, BF16, FP16)


@dataclasses.dataclass(frozen=True)
class DynamicLossScale:
    """Loss scaling that finds its own scale: the largest that does not overflow.

    After ``growth_interval`` updates in a row with finite gradients the scale is multiplied by
    ``factor``; a step whose gradients hold Inf or NaN is skipped (no update, ``global_step``
    unchanged) and the scale divided by ``factor``. The scale lives in a non-trainable variable
    (``loss_scale/scale``), so a resumed run continues with the scale it had.
    """

    # 2**15: fp16 activations' gradients are often around 1e-5..1e-8; this lifts them well
    # into float16's normal range, and the first overflows lower it within a few steps.
    initial_scale: float = 2.0 ** 15
    # Good updates between two increases (Megatron/NVIDIA BERT use 1000-2000).
    growth_interval: int = 2000
    # Multiplier on growth, divisor on overflow.
    factor: float = 2.0
    # Never below this; gradients still not finite at the floor are a real divergence.
    min_scale: float = 1.0

    def __post_init__(self):
        if self.initial_scale < self.min_scale or self.min_scale <= 0:
            raise NorbertError("loss scale: need 0 < min_scale <= initial_scale")
        if self.growth_interval < 1:
            raise NorbertError("loss scale: growth_interval must be 1 or more")
        if self.factor <= 1.0:
            raise NorbertError("loss scale: factor must be above 1")


LossScale = Union[float, DynamicLossScale]


@dataclasses.dataclass(frozen=True)
class PrecisionConfig:
    """How a run computes: ``--precision`` and, for fp16, ``--loss_scale``."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Precision"

    # Arithmetic: "fp32" (the reference's numbers exactly), "bf16" (TPUs, recent CPUs and
    # GPUs) or "fp16" (GPUs, loss-scaled). Variables and checkpoints stay float32.
    precision: str = dataclasses.field(default=FP32, metadata={"choices": PRECISIONS})
    # fp16 only: 0 means dynamic loss scaling, a positive number a fixed scale. fp32 and bf16
    # never scale the loss.
    loss_scale: float = 0.0
    # fp16 with dynamic loss scaling: good updates between doublings of the scale.
    loss_scale_growth_interval: int = 2000

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise NorbertError(
                "--precision=%s is not known: use one of %s"
                % (self.precision, ", ".join(PRECISIONS))
            )
        if self.loss_scale < 0:
            raise NorbertError("--loss_scale must be 0 (dynamic) or positive, not %g"
                               % self.loss_scale)
        if self.loss_scale_growth_interval < 1:
            raise NorbertError("--loss_scale_growth_interval=%d must be at least 1"
                               % self.loss_scale_growth_interval)
        if self.loss_scale and self.precision != FP16:
            raise NorbertError(
                "--loss_scale is for --precision=fp16 only (bf16 has float32's range and "
                "needs none)"
            )

    def loss_scaling(self) -> LossScale:
        """What ``optimization.create_train_op`` takes as ``loss_scale``."""
        if self.precision != FP16:
            return 1.0
        if self.loss_scale:
            return float(self.loss_scale)
        return DynamicLossScale(growth_interval=self.loss_scale_growth_interval)
