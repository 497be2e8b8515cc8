"""The package's face: ``help(norbert)`` is a short map, and shows without TensorFlow."""

import subprocess
import sys

import norbert

# A fresh interpreter: in this one other tests may have loaded TensorFlow already.
_HELP = """
import pydoc, sys
import norbert
text = pydoc.render_doc(norbert)
print("tensorflow" in sys.modules)
print(text)
"""


def _help_in_fresh_interpreter():
    done = subprocess.run([sys.executable, "-c", _HELP], capture_output=True, text=True,
                          check=True)
    loaded, text = done.stdout.split("\n", 1)
    return loaded, text


def test_help_is_a_short_map_without_tensorflow():
    loaded, text = _help_in_fresh_interpreter()
    assert loaded == "False"
    lines = text.splitlines()
    assert len(lines) < 150, len(lines)
    for name in ("vocab_report", "build_vocab", "extend_vocab", "create_pretraining_data",
                 "run_pretraining", "export_to_hf", "import_from_hf", "PretrainingConfig",
                 "DataConfig", "VocabConfig", "NorbertError", "FullTokenizer"):
        assert name in text, name
    assert "norbert.run_pretraining(" in text  # the example


def test_docstring_names_every_public_name():
    for name in norbert.__all__:
        assert name in norbert.__doc__, name


def test_dir_and_attributes_unchanged_outside_help():
    # help() leaves the public names out of its listing, nothing else does.
    assert set(norbert.__all__) <= set(dir(norbert))
    assert norbert.build_vocab.__name__ == "build_vocab"
    assert norbert.vocab_report.__name__ == "vocab_report"
    from norbert import VocabReportConfig  # noqa: F401  (a lazy name, imported by name)
