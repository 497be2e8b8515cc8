"""tools/flags_reference.py: docs/flags.md is every command's flags, written from the configs;
``--check`` fails when the committed file is not what the tool writes."""

import dataclasses
import importlib
import os
import subprocess
import sys

import pytest

from norbert.commands import flags as command_flags
from norbert.settings import required_names

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(REPO, "tools", "flags_reference.py")
sys.path.insert(0, os.path.join(REPO, "tools"))

import flags_reference  # noqa: E402

COMMANDS = ("build_vocab", "create_pretraining_data", "run_pretraining", "convert_to_pytorch",
            "import_hf", "extend_vocab", "vocab_report", "evaluate_downstream")


def _tool(*args):
    return subprocess.run([sys.executable, TOOL] + list(args), capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_the_committed_file_is_current_and_checking_loads_no_tensorflow():
    probe = ("import runpy, sys\nsys.argv = [%r, '--check']\ntry:\n"
             "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
             "finally:\n    print('TF_IMPORTED=%%s' %% ('tensorflow' in sys.modules))\n" % TOOL)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr  # else: python tools/flags_reference.py
    assert done.stdout == "TF_IMPORTED=False\n" and done.stderr == ""


def test_check_fails_on_a_stale_or_missing_file_and_names_the_fix(tmp_path):
    copy = tmp_path / "flags.md"
    assert _tool("--output", str(copy)).returncode == 0
    with open(os.path.join(REPO, "docs", "flags.md"), encoding="utf-8") as f:
        assert copy.read_text(encoding="utf-8") == f.read()
    assert _tool("--check", "--output", str(copy)).returncode == 0
    copy.write_text(copy.read_text(encoding="utf-8").replace("`0.999`", "`0.99`", 1),
                    encoding="utf-8")
    done = _tool("--check", "--output", str(copy))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == ("error: %s is stale: run `python tools/flags_reference.py` to "
                           "write it from the configs\n" % copy)
    done = _tool("--check", "--output", str(tmp_path / "none.md"))
    assert done.returncode == 1 and "none.md is missing: run `python tools/flags_reference" \
        ".py`" in done.stderr
    assert not (tmp_path / "none.md").exists()
    assert flags_reference.main(["--check"]) == 0  # in-process too: the committed file


def _sections(text):
    """{command: {heading: {flag: its table row}}} of the reference."""
    out, command, heading = {}, None, None
    for line in text.splitlines():
        if line.startswith("## "):
            command, heading = line[3:], None
            out[command] = {}
        elif line.startswith("### "):
            heading = line[4:]
            out[command][heading] = {}
        elif line.startswith("| `--"):
            name = line.split("`")[1][2:]
            out[command].setdefault(heading, {})[name] = line
    return out


def _configs(command):
    out = []
    for ref in importlib.import_module("norbert.commands." + command).CONFIGS:
        ref, required = required_names(ref)
        module, _, name = ref.partition(":") if isinstance(ref, str) else (
            ref.__module__, ":", ref.__name__)
        out.append((getattr(importlib.import_module(module), name), required))
    return out


def test_every_flag_is_listed_under_its_configs_heading():
    sections = _sections(flags_reference.reference())
    assert flags_reference.commands() == [
        "vocab_report", "build_vocab", "extend_vocab", "create_pretraining_data",
        "run_pretraining", "convert_to_pytorch", "import_hf", "evaluate_downstream"]
    assert sorted(sections) == sorted(COMMANDS + ("Every command",))
    assert sections["Every command"][None]["verbose"] == (
        "| `--verbose` | true/false | `false` | Show the full traceback when something goes "
        "wrong. |")
    for command in COMMANDS:
        configs = _configs(command)
        assert list(sections[command]) == [cls.HEADING for cls, _ in configs]
        for cls, required in configs:
            rows = sections[command][cls.HEADING]
            assert list(rows) == [f.name for f in dataclasses.fields(cls)]  # the fields' order
            for field in dataclasses.fields(cls):
                needed = field.default is dataclasses.MISSING or field.name in required
                assert (" | **required** | " in rows[field.name]) == needed, rows[field.name]


def test_rows_show_types_choices_and_defaults_as_values():
    rows = _sections(flags_reference.reference())
    vocab, train = rows["build_vocab"], rows["run_pretraining"]
    assert vocab["Vocab"]["character_coverage"].startswith(
        "| `--character_coverage` | float | `0.9999` | Share of character occurrences")
    assert train["Optimizer"]["optimizer"].startswith(
        "| `--optimizer` | `adamw` \\| `adamw_exact` \\| `lamb` | `adamw` | ")
    assert train["Data and run"]["bert_config_file"].startswith(
        "| `--bert_config_file` | text | **required** | The bert_config.json")
    assert train["Data and run"]["init_checkpoint"].startswith(
        "| `--init_checkpoint` | text | unset | ")
    assert train["Optimizer"]["exclude_from_weight_decay"].startswith(
        "| `--exclude_from_weight_decay` | comma-separated list | `LayerNorm,layer_norm,bias` |")
    assert rows["convert_to_pytorch"]["Tokenizer"]["do_lower_case"].startswith(
        "| `--do_lower_case` | true/false | **required** | ")
    assert rows["extend_vocab"]["Tokenizer"]["do_lower_case"].startswith(
        "| `--do_lower_case` | true/false | `true` | ")


def test_help_text_is_escaped_for_markdown():
    setting = command_flags.Setting(
        name="x", owner="m:C", kind="str", default="a|b", required=False, choices=None,
        help="Globs nb=data/nb-*,en=data/en-* and <url> | a \\ b.")
    assert flags_reference._table([setting])[2] == (
        "| `--x` | text | `a\\|b` | "
        "Globs nb=data/nb-\\*,en=data/en-\\* and &lt;url> \\| a \\\\ b. |")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_says_how_it_is_called(command):
    text = flags_reference.reference()
    section = text.split("\n## %s\n" % command)[1].split("\n## ")[0]
    assert "`norbert-%s`, or `python scripts/%s.py`" % (command.replace("_", "-"), command) \
        in section
    module = importlib.import_module("norbert.commands." + command)
    assert section.strip().startswith(module.__doc__.strip().split("\n")[0])
