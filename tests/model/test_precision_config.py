"""The precision settings check themselves, naming the flag, and say how the loss is scaled;
no TensorFlow."""

import pytest

from norbert.errors import NorbertError
from norbert.model.precision_config import DynamicLossScale, PrecisionConfig


def test_loss_scaling_follows_the_precision():
    assert PrecisionConfig().loss_scaling() == 1.0
    assert PrecisionConfig("bf16").loss_scaling() == 1.0
    assert PrecisionConfig("fp16").loss_scaling() == DynamicLossScale()
    assert PrecisionConfig("fp16", loss_scale_growth_interval=100).loss_scaling() == \
        DynamicLossScale(growth_interval=100)
    assert PrecisionConfig("fp16", loss_scale=512).loss_scaling() == 512.0


@pytest.mark.parametrize("make, message", [
    (lambda: PrecisionConfig("fp8"), "--precision=fp8 is not known"),
    (lambda: PrecisionConfig("bf16", loss_scale=8), "--loss_scale is for --precision=fp16 only"),
    (lambda: PrecisionConfig("fp16", loss_scale=-1), "--loss_scale must be 0 .dynamic. or"),
    (lambda: PrecisionConfig("fp16", loss_scale_growth_interval=0),
     "--loss_scale_growth_interval=0 must be at least 1"),
    (lambda: DynamicLossScale(factor=1.0), "factor must be above 1"),
    (lambda: DynamicLossScale(growth_interval=0), "growth_interval must be 1 or more"),
    (lambda: DynamicLossScale(initial_scale=0.5), "need 0 < min_scale <= initial_scale"),
])
def test_bad_settings(make, message):
    with pytest.raises(NorbertError, match=message):
        make()
