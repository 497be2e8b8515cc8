"""The commands' flags are the config dataclasses' fields: names, defaults, help, required,
choices. Plus the machinery (norbert.commands.flags), the thin scripts and the console entry
points."""

import ast
import dataclasses
import importlib
import os
import subprocess
import sys
import textwrap

import pytest
from absl import flags

from norbert.commands import flags as command_flags
from norbert.data.config import DataConfig
from norbert.errors import NorbertError
from norbert.settings import required_names

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The flags each script had before its flags were made from the configs: users' command lines
# and Google's use these names.
OLD_FLAGS = {
    "build_vocab": (
        "input_file output_file vocab_size do_lower_case min_frequency num_unused "
        "character_coverage merge_score max_input_bytes num_workers extend_vocab progress"),
    "create_pretraining_data": (
        "input_file output_file vocab_file do_lower_case do_whole_word_mask "
        "whole_word_mask_per_word max_seq_length max_predictions_per_seq random_seed "
        "dupe_factor masked_lm_prob short_seq_prob num_workers num_output_shards block_mb "
        "progress"),
    "run_pretraining": (
        "bert_config_file input_file output_dir init_checkpoint max_seq_length "
        "max_predictions_per_seq do_train do_eval train_batch_size eval_batch_size "
        "learning_rate num_train_steps num_warmup_steps save_checkpoints_steps "
        "iterations_per_loop max_eval_steps use_tpu tpu_name tpu_zone gcp_project master "
        "num_tpu_cores eval_input_file optimizer gradient_accumulation_steps weight_decay_rate "
        "clip_norm keep_checkpoint_max log_every_steps use_xla precision loss_scale seed "
        "engine"),
    "convert_to_pytorch": "checkpoint bert_config_file vocab_file do_lower_case output_dir format",
    "import_hf": "hf_dir output_dir",
    # Newer than the generated flags: the names its issue gave it.
    "extend_vocab": ("input_file vocab_file bert_config_file init_checkpoint output_dir "
                     "num_new_tokens do_lower_case init"),
    "vocab_report": "vocab_file input_file num_new_tokens json do_lower_case",
    # Its issue's names; the hyperparameters as Google's run_classifier.py names them.
    "evaluate_downstream": (
        "train_file eval_file checkpoint bert_config_file vocab_file output_dir task "
        "label_column text_field label_field learning_rate num_train_epochs train_batch_size "
        "max_seq_length warmup_proportion num_seeds watch do_lower_case"),
}
SCRIPTS = sorted(OLD_FLAGS)
# Google's run_pretraining.py: the flags whose defaults its users rely on.
GOOGLE_RUN_PRETRAINING_DEFAULTS = {
    "max_seq_length": 128, "max_predictions_per_seq": 20, "do_train": False, "do_eval": False,
    "train_batch_size": 32, "eval_batch_size": 8, "learning_rate": 5e-5,
    "num_train_steps": 100000, "num_warmup_steps": 10000, "save_checkpoints_steps": 1000,
    "iterations_per_loop": 1000,
    "max_eval_steps": 100, "use_tpu": False, "num_tpu_cores": 8, "init_checkpoint": None,
}
# Google's create_pretraining_data.py.
GOOGLE_DATA_DEFAULTS = {
    "do_lower_case": True, "max_seq_length": 128, "max_predictions_per_seq": 20,
    "random_seed": 12345, "dupe_factor": 10, "masked_lm_prob": 0.15, "short_seq_prob": 0.1,
}


def _command(script):
    return importlib.import_module("norbert.commands." + script)


def _classes(script, with_required=False):
    """The script's config classes (and with_required: the names each requires itself)."""
    out = []
    for ref in _command(script).CONFIGS:
        ref, required = required_names(ref)
        if isinstance(ref, str):
            module, _, name = ref.partition(":")
            ref = getattr(importlib.import_module(module), name)
        out.append((ref, required) if with_required else ref)
    return out


def _defined(script):
    """(FlagValues, settings) of the script's flags, defined on a fresh FlagValues."""
    values = flags.FlagValues()
    settings = command_flags.define_flags(*_command(script).CONFIGS, flag_values=values)
    return values, settings


def _has_default(field):
    return field.default is not dataclasses.MISSING


def _dummy(field):
    """A value a required field accepts without touching any file."""
    return True if field.type is bool else "x"


def _build(cls, **changes):
    values = {f.name: _dummy(f) for f in dataclasses.fields(cls) if not _has_default(f)}
    values.update(changes)
    return cls(**values)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_field_is_a_flag_with_its_default_and_help(script):
    values, _ = _defined(script)
    owned = [(f, required) for cls, required in _classes(script, with_required=True)
             for f in dataclasses.fields(cls)]
    fields = [f for f, _ in owned]
    assert sorted(values) == sorted(f.name for f in fields)  # no flag without a field
    for field, required in owned:
        flag = values[field.name]
        assert field.default_factory is dataclasses.MISSING, field.name
        if field.name in required:  # this command requires it: no default shown or taken
            assert flag.default is None, field.name
        elif _has_default(field):
            default = tuple(flag.default) if isinstance(field.default, tuple) else flag.default
            assert default == field.default, field.name
            assert type(default) is type(field.default) or field.default is None, field.name
        else:
            assert flag.default is None, field.name
        assert len(flag.help) > 15 and not flag.help.startswith(field.name), field.name


@pytest.mark.parametrize("script", SCRIPTS)
def test_flag_names_are_kept(script):
    values, _ = _defined(script)
    assert set(OLD_FLAGS[script].split()) <= set(values)


def test_google_defaults_are_kept():
    values, _ = _defined("run_pretraining")
    for name, default in GOOGLE_RUN_PRETRAINING_DEFAULTS.items():
        assert values[name].default == default, name
    values, _ = _defined("create_pretraining_data")
    built = DataConfig(input_file="a", output_file="b", vocab_file="c")
    for name, default in GOOGLE_DATA_DEFAULTS.items():
        if name == "dupe_factor":  # the flag says "unset": 10, or 1 with --masking=dynamic
            assert values[name].default is None and built.dupe_factor == default
            assert dataclasses.replace(built, dupe_factor=None, masking="dynamic").dupe_factor == 1
        else:
            assert values[name].default == default, name


@pytest.mark.parametrize("script", SCRIPTS)
def test_required_fields_are_required_flags(script, capsys):
    required = [f.name for cls, named in _classes(script, with_required=True)
                for f in dataclasses.fields(cls) if not _has_default(f) or f.name in named]
    assert required  # every command needs at least its inputs
    for missing in required:
        values, settings = _defined(script)
        argv = ["prog"] + ["--%s=x" % name if values[name].flag_type() != "bool" else
                           "--" + name for name in required if name != missing]
        with pytest.raises(SystemExit) as exit:
            command_flags.parse_flags(argv, settings, flag_values=values)
        assert exit.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --%s is required: " % missing)
    values, settings = _defined(script)
    argv = ["prog"] + ["--%s=x" % name if values[name].flag_type() != "bool" else
                       "--no" + name for name in required]
    assert command_flags.parse_flags(argv, settings, flag_values=values) == ["prog"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_missing_flag_is_one_line_and_exit_2(script):
    """As a user meets it: the script in a subprocess, without TensorFlow's start-up."""
    values, settings = _defined(script)
    required = [s.name for s in settings if s.required]
    given = ["--%s=x" % name if values[name].flag_type() != "bool" else "--" + name
             for name in required[1:]]
    probe = textwrap.dedent("""
        import runpy, sys
        sys.argv = %r
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
        finally:
            print("TF_IMPORTED=%%s" %% ("tensorflow" in sys.modules))
    """) % ([os.path.join(REPO, "scripts", script + ".py")] + given,)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 2, done.stderr
    first = [s for s in settings if s.required][0]
    assert done.stderr.splitlines() == [
        "error: --%s is required: %s" % (first.name, command_flags._first_sentence(first.help))]
    assert "TF_IMPORTED=False" in done.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_enum_choices_are_what_the_config_accepts(script):
    values, _ = _defined(script)
    enums = 0
    for cls in _classes(script):
        for field in dataclasses.fields(cls):
            choices = field.metadata.get("choices")
            if choices is None:
                assert values[field.name].flag_type() != "enum"
                continue
            enums += 1
            assert tuple(values[field.name].parser.enum_values) == tuple(choices)
            assert field.default in choices
            for choice in choices:
                assert getattr(_build(cls, **{field.name: choice}), field.name) == choice
            with pytest.raises(NorbertError, match="--%s" % field.name):
                _build(cls, **{field.name: "no_such_choice"})
    expected = {"build_vocab": 1, "run_pretraining": 6, "convert_to_pytorch": 1,
                "extend_vocab": 2, "create_pretraining_data": 4, "evaluate_downstream": 4}
    assert enums == expected.get(script, 0)


def test_choices_are_the_modules_constants():
    from norbert.conversion import export
    from norbert.conversion.extend_vocab import ExtendConfig
    from norbert.data import features
    from norbert.model import precision_config
    from norbert.training import config
    from norbert.vocab_building import builder, extend, learner

    def choices(cls, name):
        return [f for f in dataclasses.fields(cls) if f.name == name][0].metadata["choices"]

    assert choices(config.OptimizerConfig, "optimizer") == config.OPTIMIZERS
    assert choices(precision_config.PrecisionConfig, "precision") == precision_config.PRECISIONS
    assert choices(config.PretrainingConfig, "engine") == config.ENGINES
    assert choices(builder.VocabConfig, "merge_score") == learner.MERGE_SCORES
    assert choices(export.ExportConfig, "format") == export.FORMATS
    assert choices(DataConfig, "masking") == features.MASKINGS
    assert choices(DataConfig, "pairing") == features.PAIRINGS
    assert choices(DataConfig, "objective") == features.OBJECTIVES
    assert choices(ExtendConfig, "init") == extend.INITS
    assert choices(ExtendConfig, "bias_init") == extend.BIAS_INITS


def test_config_from_flags_builds_the_configs():
    from norbert.training.config import OptimizerConfig, PretrainingConfig
    from norbert.training.spec import RunConfig

    values, settings = _defined("run_pretraining")
    command_flags.parse_flags(["prog", "--input_file=a", "--bert_config_file=b", "--output_dir=c",
                               "--exclude_from_weight_decay=bias,LayerNorm", "--optimizer=lamb",
                               "--seed=3", "--do_train"], settings, flag_values=values)
    optimizer = command_flags.config_from_flags(OptimizerConfig, values)
    assert optimizer == OptimizerConfig(
        optimizer="lamb", exclude_from_weight_decay=("bias", "LayerNorm"))
    assert command_flags.config_from_flags(RunConfig, values) == RunConfig(output_dir="c", seed=3)
    assert command_flags.config_from_flags(PretrainingConfig, values) == PretrainingConfig(
        input_file="a", bert_config_file="b", do_train=True)


def _fixture_module(tmp_path, monkeypatch, name, source):
    (tmp_path / (name + ".py")).write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_settings_are_read_from_the_source(tmp_path, monkeypatch):
    _fixture_module(tmp_path, monkeypatch, "cli_fixture_constants", """
        KINDS = ("a", "b")
        """)
    module = _fixture_module(tmp_path, monkeypatch, "cli_fixture_config", '''
        import dataclasses
        from typing import Optional, Tuple

        from cli_fixture_constants import KINDS

        LIMIT = -3


        @dataclasses.dataclass(frozen=True)
        class Config:
            """Not part of any help."""

            # Two lines above
            # the field.
            path: str
            count: int = 4  # after it
            # Above, and
            ratio: Optional[float] = None  # after it too.

            # Only the lines right above count.
            kind: str = dataclasses.field(default="b", metadata={"choices": KINDS})
            names: Tuple[str, ...] = ("x", "y")  # a list flag
            limit: int = LIMIT  # a module's constant
            flag: bool = False  # a bool
        ''')
    settings = {s.name: s for s in command_flags.settings_of(module + ":Config")}
    assert module not in sys.modules  # read, not imported
    assert settings["path"] == command_flags.Setting(
        name="path", owner=module + ":Config", kind="str", default=None, required=True,
        choices=None, help="Two lines above the field.")
    assert settings["count"].help == "after it" and settings["count"].default == 4
    assert settings["ratio"].help == "Above, and after it too."
    assert settings["ratio"].kind == "float" and not settings["ratio"].required
    assert settings["kind"].choices == ("a", "b") and settings["kind"].default == "b"
    assert settings["kind"].help == "Only the lines right above count."
    assert settings["names"].kind == "list" and settings["names"].default == ["x", "y"]
    assert settings["limit"].default == -3 and settings["flag"].kind == "bool"

    values = flags.FlagValues()
    command_flags.define_flags(module + ":Config", flag_values=values)
    values(["prog", "--path=p", "--names=u,v", "--kind=a", "--noflag"])
    config = command_flags.config_from_flags(importlib.import_module(module).Config, values)
    assert (config.path, config.names, config.kind, config.flag) == ("p", ("u", "v"), "a", False)
    with pytest.raises(flags.IllegalFlagValueError):
        values(["prog", "--path=p", "--kind=c"])


@pytest.mark.parametrize("body, message", [
    ("size: int = 3\n", r"Config.size \(size: int = 3\) has no comment"),
    ("# a list\nsizes: Tuple[str, ...] = dataclasses.field(default_factory=tuple)\n",
     "default_factory"),
    ("# a dict\nsizes: Dict[str, int] = None\n", "cannot have this type"),
    ("# computed\nsize: int = len('abc')\n", "must be a constant"),
    ("# a number\nsize: int = dataclasses.field(default=1, metadata={'choices': (1, 2)})\n",
     "only str fields take choices"),
])
def test_a_field_that_cannot_be_a_flag_is_refused(tmp_path, monkeypatch, body, message):
    name = "cli_fixture_bad_%d" % abs(hash(body))
    source = ("import dataclasses\nfrom typing import Dict, Tuple\n\n\n"
              "@dataclasses.dataclass\nclass Config:\n" + textwrap.indent(body, "    "))
    _fixture_module(tmp_path, monkeypatch, name, source)
    with pytest.raises(TypeError, match=message):
        command_flags.settings_of(name + ":Config")


def test_a_field_two_configs_share_has_one_owner():
    from norbert.data.config import DataConfig
    from norbert.vocab_building.corpus import CorpusConfig

    with pytest.raises(ValueError, match="both have a field input_file"):
        command_flags.define_flags(DataConfig, CorpusConfig, flag_values=flags.FlagValues())


def test_help_is_fast_and_lists_the_flags_under_the_command():
    probe = textwrap.dedent("""
        import runpy, sys
        sys.argv = [%r, "--helpfull"]
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
        finally:
            print("TF_IMPORTED=%%s" %% ("tensorflow" in sys.modules))
    """) % os.path.join(REPO, "scripts", "run_pretraining.py")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "TF_IMPORTED=False" in done.stdout
    section = done.stdout.split("\nnorbert.commands.run_pretraining:\n")[1].split("\n\n")[0]
    assert "  --optimizer: <adamw|adamw_exact|lamb>: " in section
    assert "  --num_train_steps: Optimizer updates in all" in section
    assert "  --[no]use_tpu: " in section and "  --num_tpu_cores: " in section


def test_a_positional_argument_is_refused():
    done = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "import_hf.py"),
                           "--hf_dir=a", "--output_dir=b", "stray"], capture_output=True,
                          text=True)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: unexpected arguments stray: every setting is a --flag (a bool flag takes "
        "--name=false, not --name false)"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_thin(script):
    path = os.path.join(REPO, "scripts", script + ".py")
    tree = ast.parse(open(path, encoding="utf-8").read())
    assert "python scripts/%s.py --" % script in ast.get_docstring(tree)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [(n.module, [a.name for a in n.names]) for n in imports] == [
        ("norbert.commands", [script])]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert [ast.dump(c.func) for c in calls] == [ast.dump(ast.parse(
        "%s.run" % script, mode="eval").body)]


ENTRY_POINTS = {"norbert-" + s.replace("_", "-"): s for s in SCRIPTS}


def test_console_entry_points_are_the_commands():
    tree = ast.parse(open(os.path.join(REPO, "setup.py"), encoding="utf-8").read())
    setup = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", None) == "setup"][0]
    declared = ast.literal_eval([k.value for k in setup.keywords
                                 if k.arg == "entry_points"][0])["console_scripts"]
    found = dict(tuple(part.strip() for part in line.split("=")) for line in declared)
    assert found == {name: "norbert.commands.%s:run" % s for name, s in ENTRY_POINTS.items()}
    for target in found.values():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_the_console_entry_point_runs():
    command = os.path.join(os.path.dirname(sys.executable), "norbert-build-vocab")
    if not os.path.exists(command):
        pytest.skip("norbert is not pip-installed here (pip install -e .)")
    done = subprocess.run([command, "--helpfull"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "\nnorbert.commands.build_vocab:\n" in done.stdout
    assert "  --vocab_size: Lines in the vocab" in done.stdout
    assert done.stdout.startswith("Learns a WordPiece vocab.txt")  # the command's docstring


# --help: the flags under their configs' headings.

HEADINGS = {  # run_pretraining's configs, as the issue named their groups
    "PretrainingConfig": "Data and run", "OptimizerConfig": "Optimizer",
    "RunConfig": "Checkpoints, batches and logging", "TpuConfig": "TPU",
    "PrecisionConfig": "Precision", "DistributionConfig": "Distribution",
    "MixingConfig": "Mixing",
}


def _help_sections(text):
    """{heading: {flag name: its first line}} of a --help text, after the docstring."""
    body = text.split("\nFlags, by what they set (--helpfull also lists absl's own):\n")[1]
    sections, current = {}, None
    for line in body.splitlines():
        if line and not line.startswith(" "):
            assert line.endswith(":"), line
            current = sections.setdefault(line[:-1], {})
        elif line.startswith("  --"):
            name = line.split()[0].lstrip("-").split("=")[0].replace("[no]", "")
            assert name not in current, name
            current[name] = line
    return sections


def _run_help(script, flag="--help"):
    probe = textwrap.dedent("""
        import runpy, sys
        sys.argv = [%r, %r]
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
        finally:
            print("TF_IMPORTED=%%s" %% ("tensorflow" in sys.modules))
    """) % (os.path.join(REPO, "scripts", script + ".py"), flag)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("TF_IMPORTED=False\n")
    return done.stdout[: -len("TF_IMPORTED=False\n")]


def test_every_config_of_a_command_has_a_heading_of_its_own():
    for script in SCRIPTS:
        headings = []
        for cls in _classes(script):
            assert isinstance(cls.__dict__.get("HEADING"), str), cls  # written on the class
            assert "HEADING" not in {f.name for f in dataclasses.fields(cls)}  # not a flag
            assert command_flags.heading_of(cls) == cls.HEADING
            headings.append(cls.HEADING)
        assert len(set(headings)) == len(headings), script
    for ref in _command("run_pretraining").CONFIGS:
        assert command_flags.heading_of(ref) == HEADINGS[ref.partition(":")[2]]


def test_help_groups_the_flags_under_their_configs_and_marks_the_required():
    text = _run_help("run_pretraining")
    doc = ast.get_docstring(ast.parse(open(os.path.join(REPO, "scripts",
                                                        "run_pretraining.py")).read()))
    assert text.startswith(doc.splitlines()[0] + "\n")  # what it does, then the example
    assert "\n    python scripts/run_pretraining.py --input_file=" in text
    sections = _help_sections(text)
    assert list(sections) == list(HEADINGS.values()) + ["Every command"]
    for cls in _classes("run_pretraining"):
        for field in dataclasses.fields(cls):  # each flag under its config's heading, once
            line = sections[HEADINGS[cls.__name__]][field.name]
            assert line.endswith("(required)") == (not _has_default(field)), line
    assert sorted(n for s in sections.values() for n in s) == sorted(
        [s.name for s in _defined("run_pretraining")[1]] + ["verbose"])
    # Defaults as one types them, never quoted.
    assert sections["Optimizer"]["beta_2"] == "  --beta_2=<float>  (default: 0.999)"
    assert sections["Optimizer"]["optimizer"] == (
        "  --optimizer=<adamw|adamw_exact|lamb>  (default: adamw)")
    assert sections["Optimizer"]["exclude_from_weight_decay"].endswith(
        "(default: LayerNorm,layer_norm,bias)")
    assert sections["Data and run"]["do_train"] == "  --[no]do_train  (default: false)"
    assert sections["Data and run"]["init_checkpoint"].endswith("(default: unset)")
    assert sections["Every command"]["verbose"] == "  --[no]verbose  (default: false)"
    assert "'" not in "".join(line for s in sections.values() for line in s.values())
    # The help follows each flag's line, wrapped.
    assert "\n  --learning_rate=<float>  (default: 5e-05)\n      Peak learning rate" in text
    assert max(len(line) for line in text.splitlines()[12:] if line.startswith("      ")) <= 80


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_of_every_command_marks_its_required_flags(script):
    sections = _help_sections(_run_help(script))
    _, settings = _defined(script)
    for s in settings:
        line = sections[command_flags.heading_of(s.owner)][s.name]
        assert line.endswith("  (required)") == s.required, line
    if script == "convert_to_pytorch":  # required here, though the config has a default
        assert sections["Tokenizer"]["do_lower_case"] == (
            "  --do_lower_case=<true|false>  (required)")


def test_helpshort_is_grouped_and_helpfull_stays_absls():
    assert "\nOptimizer:\n" in _run_help("run_pretraining", "--helpshort")
    assert "\nOptimizer:\n" in _run_help("run_pretraining", "-?")
    full = _run_help("run_pretraining", "--helpfull")
    assert "\nOptimizer:\n" not in full and "\nabsl.logging:\n" in full


def test_help_text_renders_each_kind_of_flag():
    def setting(**changes):
        values = dict(name="x", owner="norbert.training.config:TpuConfig", kind="str",
                      default=None, required=False, choices=None, help="Help of x.")
        values.update(changes)
        return command_flags.Setting(**values)

    cases = [
        (setting(kind="float", default=0.9999), "--x=<float>  (default: 0.9999)"),
        (setting(kind="int", default=0), "--x=<int>  (default: 0)"),
        (setting(kind="bool", default=True), "--[no]x  (default: true)"),
        (setting(kind="bool", required=True), "--x=<true|false>  (required)"),
        (setting(kind="list", default=["a", "b"]),
         "--x=<comma-separated list>  (default: a,b)"),
        (setting(kind="list", default=[]), '--x=<comma-separated list>  (default: "")'),
        (setting(default=""), '--x=<text>  (default: "")'),
        (setting(default=None), "--x=<text>  (default: unset)"),
        (setting(required=True), "--x=<text>  (required)"),
        (setting(default="b", choices=("a", "b")), "--x=<a|b>  (default: b)"),
    ]
    for s, line in cases:
        text = command_flags.help_text("Does x.\n", [s])
        assert text == ("Does x.\n\nFlags, by what they set (--helpfull also lists absl's "
                        "own):\n\nTPU:\n  %s\n      Help of x.\n" % line)


def test_heading_is_the_class_attribute_else_the_docstring(tmp_path, monkeypatch):
    module = _fixture_module(tmp_path, monkeypatch, "cli_fixture_headings", '''
        import dataclasses
        from typing import ClassVar

        NAME = "Named"


        @dataclasses.dataclass(frozen=True)
        class Headed:
            """Not the heading."""

            HEADING: ClassVar[str] = NAME

            # A field.
            size: int = 1


        @dataclasses.dataclass(frozen=True)
        class Documented:
            """Where the text comes
            from, in two lines.

            More.
            """

            # A field.
            size: int = 1


        @dataclasses.dataclass(frozen=True)
        class Bare:
            # A field.
            size: int = 1
        ''')
    assert command_flags.heading_of(module + ":Headed") == "Named"
    assert command_flags.heading_of(module + ":Documented") == (
        "Where the text comes from, in two lines")
    assert command_flags.heading_of(module + ":Bare") == "Bare"
    assert [s.name for s in command_flags.settings_of(module + ":Headed")] == ["size"]
    grouped = command_flags.groups(command_flags.settings_of(module + ":Headed")
                                   + command_flags.settings_of(module + ":Bare"))
    assert [(h, [s.owner for s in g]) for h, g in grouped] == [
        ("Named", [module + ":Headed"]), ("Bare", [module + ":Bare"])]
    assert module not in sys.modules  # read, not imported
