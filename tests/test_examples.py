"""The examples run: the notebook top to bottom in a Jupyter kernel, and the demo end to end."""

import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _text_outputs(cell):
    return "".join(out.get("text", "") for out in cell.get("outputs", ())
                   if out.get("output_type") == "stream" and out.get("name") == "stdout")


def test_sample_corpus_is_in_the_reference_format():
    with open(os.path.join(EXAMPLES, "sample_text.txt"), encoding="utf-8") as f:
        text = f.read()
    documents = text.strip("\n").split("\n\n")
    assert len(documents) >= 40 and "\n\n\n" not in text and text.endswith("\n")
    assert all(line == line.strip() for line in text.split("\n"))
    assert "æ" in text and "ø" in text and "å" in text  # Norwegian beside the English


def test_quickstart_notebook_runs_top_to_bottom(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(os.path.join(EXAMPLES, "quickstart.ipynb"), as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": EXAMPLES}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on failure
    printed = "\n".join(_text_outputs(c) for c in notebook.cells if c.cell_type == "code")
    assert "masked_lm_accuracy" in printed and "next_sentence_accuracy" in printed
    assert "model.safetensors" in printed and "bert_model.ckpt.index" in printed


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "demo.py"), "--output_dir=%s" % out,
         "--num_train_steps=4", "--vocab_size=800", "--dupe_factor=1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
        cwd=str(tmp_path), env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stdout[-3000:]
    summary = done.stdout[done.stdout.index("== summary"):]
    for step in ("vocabulary", "pretraining data", "pretraining + eval", "export", "fill [MASK]"):
        assert step in summary
    assert "held-out masked_lm_accuracy" in summary
    assert sorted(os.listdir(str(out / "hf")))[:2] == ["config.json", "model.safetensors"]
    # A rerun replaces the demo's own folder, but never a folder it did not make.
    other = tmp_path / "mine"
    other.mkdir()
    refused = subprocess.run([sys.executable, os.path.join(EXAMPLES, "demo.py"),
                              "--output_dir=%s" % other], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True)
    assert refused.returncode != 0 and "not made by the demo" in refused.stderr
    assert os.listdir(str(other)) == []
