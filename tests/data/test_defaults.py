"""BERT's sequence and masking defaults: Google's values, and the default of every config that
takes them."""

import dataclasses

from norbert.data import defaults
from norbert.data.config import DataConfig
from norbert.data.instances import InstanceConfig
from norbert.data.masking import MaskingConfig


def _defaults(cls):
    return {f.name: f.default for f in dataclasses.fields(cls)}


def test_the_values_are_googles():
    assert (defaults.MAX_SEQ_LENGTH, defaults.MAX_PREDICTIONS_PER_SEQ, defaults.MASKED_LM_PROB,
            defaults.SHORT_SEQ_PROB) == (128, 20, 0.15, 0.1)


def test_every_data_config_takes_them():
    data = _defaults(DataConfig)
    assert data["max_seq_length"] == _defaults(InstanceConfig)["max_seq_length"] == 128
    assert data["short_seq_prob"] == _defaults(InstanceConfig)["short_seq_prob"] == 0.1
    assert data["masked_lm_prob"] == _defaults(MaskingConfig)["masked_lm_prob"] == 0.15
    assert (data["max_predictions_per_seq"]
            == _defaults(MaskingConfig)["max_predictions_per_seq"] == 20)
