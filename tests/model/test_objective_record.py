"""The record of the objectives that trained a run's folder (``norbert.model.objective_record``)."""

import json

import pytest

from norbert.model import objective_record


def test_a_change_of_objective_is_noted_a_repeat_is_not(tmp_path):
    folder = str(tmp_path / "run")
    assert objective_record.read(folder) is None  # no record: not known
    assert objective_record.note(folder, "mlm_nsp") == ["mlm_nsp"]
    assert objective_record.note(folder, "mlm_nsp") == ["mlm_nsp"]
    assert objective_record.note(folder, "mlm") == ["mlm_nsp", "mlm"]
    assert objective_record.read(folder) == ["mlm_nsp", "mlm"]
    data = json.loads((tmp_path / "run" / objective_record.FILE_NAME).read_text())
    assert data == {"format": 1, "objectives": ["mlm_nsp", "mlm"]}
    with pytest.raises(ValueError, match="objective 'nsp'"):
        objective_record.note(folder, "nsp")


@pytest.mark.parametrize("text", ["not json", "[]", '{"format": 2, "objectives": ["mlm"]}',
                                  '{"format": 1, "objectives": []}',
                                  '{"format": 1, "objectives": ["nsp"]}'])
def test_a_record_it_cannot_read_is_not_known(tmp_path, text):
    (tmp_path / objective_record.FILE_NAME).write_text(text)
    assert objective_record.read(str(tmp_path)) is None
