"""The package's layout rules, read from the imports (ast): stages depend downwards only.

    tokenization  <-  vocab_building
    tokenization  <-  data  <-  model  <-  training
                               model  <-  conversion   (never training; vocab_building
                                                        too: extend_vocab grows a checkpoint)
                    training, model  <-  downstream    (fine-tuning copies of a checkpoint)

The ground floor (errors, fileio, settings, progress, workers, beam_runner) depends on no
stage; the tools that assemble the stages (norbert/__init__.py, norbert/commands/, the flag
machinery included) may use them all.
tokenization/, vocab_building/ and data/ import no TensorFlow when imported (the data tools
run without it, and start fast): checked from the source and by importing them.
The commands, and run_pretraining's module with its configs, load no TensorFlow either: its
plan checks flags and files first.

Inside the rooms: no function over 80 lines; ``do_lower_case`` declared by one config (the
tokenizer options); the TFRecord framing parsed only in ``data/tfrecord.py``; no module-level
state in training/. Each rule is checked against a planted breach too.
"""

import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "norbert")
STAGES = ("tokenization", "vocab_building", "data", "model", "training", "conversion",
          "downstream")
# What each part may import from norbert (besides itself and the ground floor).
ALLOWED = {
    "ground": set(),
    "tokenization": set(),
    "vocab_building": {"tokenization"},
    "data": {"tokenization"},
    "model": {"tokenization", "data"},
    "training": {"tokenization", "data", "model"},
    "conversion": {"tokenization", "vocab_building", "data", "model"},
    "downstream": {"tokenization", "data", "model", "training"},
}
NO_TENSORFLOW_AT_IMPORT = ("tokenization", "vocab_building", "data")


def _modules():
    """{module name: path} for every module of the package."""
    out = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                out[rel[: -len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return out


MODULES = _modules()


def _imports(path, module):
    """(imported module, at import time?) for each import in the file; relative ones resolved.

    An import inside a function runs only when it is called: it is a dependency, but not one
    paid at import time.
    """
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    top_level = set()

    def mark(body):
        for node in body:
            top_level.add(node)
            if isinstance(node, (ast.If, ast.Try)):  # module-level conditionals still run
                mark(node.body)
                mark(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    mark(handler.body)
                mark(getattr(node, "finalbody", []))

    mark(tree.body)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, node in top_level))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                full = "%s.%s" % (base, alias.name)
                found.append((full if full in MODULES else base, node in top_level))
    return found


def _part(module):
    """The stage a norbert module belongs to, "ground", or None for the assembling tools."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "commands":
        return None
    if parts[1] in STAGES:
        return parts[1]
    return "ground"


def _norbert_deps(module):
    deps = set()
    for name, _ in _imports(MODULES[module], module):
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name.startswith("norbert") and name != module:
            deps.add(name)
    return deps


def test_the_package_is_laid_out_by_stage():
    for stage in STAGES:
        assert "norbert.%s" % stage in MODULES
        doc = ast.get_docstring(ast.parse(open(MODULES["norbert.%s" % stage]).read()))
        assert doc, "norbert/%s/__init__.py needs a docstring saying what the stage does" % stage
    loose = [m for m in MODULES if _part(m) == "ground"]
    assert sorted(loose) == sorted(
        m for m in loose if m.split(".")[1] in
        ("errors", "fileio", "settings", "progress", "workers", "beam_runner")), loose


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_only(module):
    part = _part(module)
    if part is None:
        return
    allowed = ALLOWED[part] | {part, "ground"}
    # The assembling tools (part None) are above every stage: never imported from below.
    wrong = sorted(d for d in _norbert_deps(module) if _part(d) not in allowed)
    assert not wrong, "%s (%s) may not import %s" % (module, part, ", ".join(wrong))


def test_no_import_cycles():
    graph = {m: _norbert_deps(m) for m in MODULES}
    # A package's __init__ is imported with each of its modules; its own imports of them are
    # the package's, not a cycle.
    for m in graph:
        graph[m] = {d for d in graph[m] if not m.startswith(d + ".")}
    state = {}

    def visit(m, path):
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycle = path[path.index(d):] + [d]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d, path + [d])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


@pytest.mark.parametrize("stage", NO_TENSORFLOW_AT_IMPORT)
def test_data_stages_import_no_tensorflow_at_import_time(stage):
    for module in sorted(m for m in MODULES if _part(m) == stage):
        tf = [name for name, at_import in _imports(MODULES[module], module)
              if at_import and name.split(".")[0] == "tensorflow"]
        assert not tf, "%s imports %s at import time" % (module, tf[0])


def _tensorflow_loaded_by(names):
    """The TensorFlow modules that importing ``names`` (and norbert itself) loads, in a fresh
    process."""
    code = ("import sys, importlib\n"
            "for name in %r: importlib.import_module(name)\n"
            "import norbert\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow'))" % names)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_data_stages_load_without_tensorflow():
    """Importing every module of the data stages (and norbert itself) loads no TensorFlow."""
    names = sorted(m for m in MODULES if _part(m) in NO_TENSORFLOW_AT_IMPORT + ("ground",))
    assert _tensorflow_loaded_by(names) == "[]"


def test_commands_and_the_run_plan_load_without_tensorflow():
    """The commands, and run_pretraining's module with its configs, load no TensorFlow: --help,
    a bad flag and the run plan's checks answer before TensorFlow is imported."""
    names = sorted(m for m in MODULES if m.startswith("norbert.commands")) + [
        "norbert.training.pretraining", "norbert.training.config",
        "norbert.model.precision_config", "norbert.model.checkpoints"]
    assert _tensorflow_loaded_by(names) == "[]"


def test_the_rules_catch_a_wrong_import(tmp_path, monkeypatch):
    """The checks above are not vacuous: a data module importing training is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("import tensorflow\nfrom norbert.training import loop\n")
    monkeypatch.setitem(MODULES, "norbert.data.bad", str(bad))
    assert "norbert.training.loop" in _norbert_deps("norbert.data.bad")
    with pytest.raises(AssertionError, match="may not import norbert.training.loop"):
        test_imports_point_down_only("norbert.data.bad")
    with pytest.raises(AssertionError, match="imports tensorflow at import time"):
        test_data_stages_import_no_tensorflow_at_import_time("data")


# Inside the rooms: a function fits on a screen; each setting has one declaration; the TFRecord
# framing has one reader; training keeps no state in its modules.
MAX_FUNCTION_LINES = 80
FRAMING = ("crc32c", "masked_crc32c", "HEADER_BYTES", "FOOTER_BYTES")  # tfrecord.py's own
MUTABLE_CALLS = {"list", "dict", "set", "defaultdict", "Counter", "OrderedDict", "deque"}
MUTATORS = {"append", "add", "update", "extend", "insert", "pop", "remove", "clear",
            "setdefault", "discard", "popitem"}


def _tree(path):
    return ast.parse(open(path, encoding="utf-8").read(), path)


def long_functions(tree):
    """(name, lines) of every function longer than MAX_FUNCTION_LINES (docstring included)."""
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def declared_fields(tree, name):
    """Config classes (``...Config``, ``...Options``) of the module that declare a field
    ``name`` with a type."""
    return [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
            and node.name.endswith(("Config", "Options"))
            for item in node.body if isinstance(item, ast.AnnAssign)
            and isinstance(item.target, ast.Name) and item.target.id == name]


def framing_uses(tree):
    """What of the TFRecord framing a module parses itself: a struct format for the 8-byte
    length ("<Q"), or the checksum functions and sizes named outside their module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith("<Q"):
            found.append(repr(node.value))
        elif isinstance(node, ast.Attribute) and node.attr in FRAMING:
            found.append(node.attr)
        elif isinstance(node, ast.alias) and node.name in FRAMING:
            found.append(node.name)
    return found


def _is_mutable(value):
    if isinstance(value, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        return (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) \
            in MUTABLE_CALLS
    return False


def module_state(tree):
    """Module-level state a module could change at run time: ``global`` statements, mutable
    containers bound at module level (an UPPER_CASE one is a constant table, unless a function
    changes it)."""
    found = [", ".join(node.names) for node in ast.walk(tree) if isinstance(node, ast.Global)]
    mutable = []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _is_mutable(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            mutable += [t.id for t in targets if isinstance(t, ast.Name)]
    # An UPPER_CASE name is a constant table, a dunder (__all__) Python's own.
    found += [name for name in mutable
              if not name.lstrip("_").isupper() and not name.startswith("__")]
    changed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.attr in MUTATORS:
            changed.add(node.func.value.id)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = getattr(node, "targets", None) or [node.target]
            changed.update(t.value.id for t in targets if isinstance(t, ast.Subscript)
                           and isinstance(t.value, ast.Name))
    return found + sorted(name for name in changed & set(mutable) if name.lstrip("_").isupper())


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_function_is_longer_than_a_screen(module):
    found = long_functions(_tree(MODULES[module]))
    assert not found, "%s: %s over %d lines: name its steps" % (
        module, ", ".join("%s (%d)" % f for f in found), MAX_FUNCTION_LINES)


def test_do_lower_case_is_declared_once_among_the_configs():
    owners = ["%s.%s" % (module, cls) for module, path in sorted(MODULES.items())
              for cls in declared_fields(_tree(path), "do_lower_case")]
    assert owners == ["norbert.tokenization.options.TokenizerOptions"], owners


def test_tfrecord_framing_is_parsed_only_in_data_tfrecord():
    found = {module: framing_uses(_tree(path)) for module, path in MODULES.items()
             if module != "norbert.data.tfrecord"}
    assert {m: f for m, f in found.items() if f} == {}
    assert framing_uses(_tree(MODULES["norbert.data.tfrecord"]))  # the check sees its home


# State kept on purpose, per worker process of the sharded builder: the channel its pool's
# initializer hands it, and the tokenizer and masker its first shard builds for the rest.
WORKER_STATE = {"norbert.data.sharded": ["_QUEUE", "_TOOLS"]}


def test_modules_keep_no_state():
    found = {module: module_state(_tree(path)) for module, path in MODULES.items()}
    assert {m: f for m, f in found.items() if f} == WORKER_STATE


def test_the_rules_inside_the_rooms_catch_what_they_forbid():
    """The checks above are not vacuous: planted breaches are found."""
    long_body = "\n".join("    x%d = %d" % (i, i) for i in range(MAX_FUNCTION_LINES))
    assert long_functions(ast.parse("def f():\n%s\n" % long_body)) == [
        ("f", MAX_FUNCTION_LINES + 1)]
    assert declared_fields(ast.parse("class DataConfig:\n    do_lower_case: bool = True\n"),
                           "do_lower_case") == ["DataConfig"]
    framing = ast.parse("import struct\nfrom norbert.data.tfrecord import masked_crc32c\n"
                        "n, = struct.unpack('<Q', b'12345678')\n")
    assert sorted(framing_uses(framing)) == ["'<Q'", "masked_crc32c"]
    state = ast.parse("_warned = set()\nSEEN = []\nTABLE = {1: 2}\nLIMIT = 3\n__all__ = []\n"
                      "names = dict()\ndef f():\n    global COUNT\n    SEEN.append(1)\n")
    assert sorted(module_state(state)) == ["COUNT", "SEEN", "_warned", "names"]
