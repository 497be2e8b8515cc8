"""What every command shares: flags made from the config dataclasses, errors as one line.

Each setting is written once, as a field of a frozen config dataclass with a comment above it
(or after it, on its line). ``define_flags`` turns the fields into absl flags: the flag's name
is the field's, its type the annotation's (bool, int, float, str, ``Optional[...]`` of one of
them, ``Tuple[str, ...]`` as a comma-separated list), its default the field's default and its
help the field's comment. A field without a default is a required flag; a field declared as
``dataclasses.field(default=..., metadata={"choices": CHOICES})`` is an enum flag, and its
config checks the value against the same ``CHOICES``. A config's flags are listed under its
heading, the class attribute ``HEADING: ClassVar[str]`` (else its docstring's first paragraph):
``--help`` prints them so grouped, and ``tools/flags_reference.py`` writes docs/flags.md.

The fields are read from the class's source (ast), without importing its module: a command
whose configs live beside TensorFlow code still answers ``--help`` and reports a bad flag in
a fraction of a second, and imports TensorFlow in ``main()`` only.
"""

import ast
import dataclasses
import functools
import importlib.util
import io
import os
import re
import sys
import textwrap
import tokenize
import warnings
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple, Union

from absl import app, flags

from norbert import settings as settings_lib
from norbert.errors import NorbertError

FLAGS = flags.FLAGS
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), as a shell reports a process it ended
EXIT_TERMINATED = 143  # SIGTERM: a job scheduler sees that the run did not finish

# A config class, "package.module:ClassName", or a settings.Required of either.
ConfigRef = Union[type, str, settings_lib.Required]

_SCALARS = ("bool", "int", "float", "str")
_HELP_FLAGS = ("help", "helpshort", "helpfull", "helpxml", "?")
_GROUPED_HELP_FLAGS = ("help", "helpshort", "?")  # printed grouped; --helpfull is absl's
_WIDTH = 80  # of --help's lines


def _keep_keras_out_of_home() -> None:
    """Stops ``import tensorflow`` from creating ``~/.keras/keras.json``.

    TensorFlow 2.x imports Keras, which writes a default config into the home folder when none
    exists; norbert uses no Keras, and its scripts write only where they are told. Pointing
    KERAS_HOME at a path that cannot be created makes Keras skip the write (it ignores the
    error) and use its defaults, which is what it would read from the new file anyway. A user's
    own KERAS_HOME or existing keras.json is left alone.
    """
    default = os.path.join(os.path.expanduser("~"), ".keras", "keras.json")
    if "KERAS_HOME" not in os.environ and not os.path.exists(default):
        os.environ["KERAS_HOME"] = os.path.join(os.devnull, "keras")


_keep_keras_out_of_home()


@dataclasses.dataclass(frozen=True)
class Setting:
    """One field of a config dataclass, as its flag is made."""

    name: str
    owner: str  # "module:Class" of the config that holds the field
    kind: str  # "bool", "int", "float", "str", or "list" for a Tuple[str, ...] field
    default: Any  # the field's default; None for a required field
    required: bool  # the field has no default
    choices: Optional[Tuple[str, ...]]  # the accepted values of an enum field
    help: str  # the field's comment, as one line


class _NotStatic(Exception):
    """A default or constant that cannot be read from the source without running it."""


@dataclasses.dataclass(frozen=True)
class _ModuleRef:
    name: str


@functools.lru_cache(maxsize=None)
def _module_source(name: str) -> Tuple[str, bool]:
    """The source of module ``name`` and whether it is a package; only its parent packages
    are imported, not the module."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError("no module named %s" % name)
    source = spec.loader.get_source(name)
    if source is None:
        raise ImportError("the source of %s is not available" % name)
    return source, spec.submodule_search_locations is not None


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class _StaticModule:
    """A module's top-level constants, evaluated from its source on demand."""

    def __init__(self, name: str):
        source, is_package = _module_source(name)
        self.name = name
        self.source = source
        self.tree = ast.parse(source)
        package = name if is_package else name.rpartition(".")[0]
        self._assigned = {}  # type: Dict[str, ast.AST]
        self._imported = {}  # type: Dict[str, Tuple[str, Optional[str]]]
        for node in self.tree.body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    self._assign(target, node.value)
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                self._assign(node.target, node.value)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                for alias in node.names:
                    self._imported[alias.asname or alias.name] = (base, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self._imported[alias.asname] = (alias.name, None)
                    else:
                        first = alias.name.split(".")[0]
                        self._imported[first] = (first, None)

    def _assign(self, target: ast.AST, value: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self._assigned[target.id] = value
        elif (isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple)
              and len(target.elts) == len(value.elts)):
            for t, v in zip(target.elts, value.elts):
                self._assign(t, v)

    def lookup(self, name: str) -> Any:
        if name in self._assigned:
            return self.evaluate(self._assigned[name])
        if name in self._imported:
            base, attr = self._imported[name]
            if attr is None:
                return _ModuleRef(base)
            if _module_source(base)[1] and _is_module("%s.%s" % (base, attr)):
                return _ModuleRef("%s.%s" % (base, attr))
            return _static_module(base).lookup(attr)
        raise _NotStatic("%s is not a constant of %s" % (name, self.name))

    def evaluate(self, node: ast.AST) -> Any:
        """The value of a constant expression: literals, tuples, names of constants."""
        if isinstance(node, ast.Name) and node.id not in ("None", "True", "False"):
            return self.lookup(node.id)
        if isinstance(node, ast.Attribute):
            owner = self.evaluate(node.value)
            if isinstance(owner, _ModuleRef):
                return _static_module(owner.name).lookup(node.attr)
            raise _NotStatic(ast.dump(node))
        if isinstance(node, (ast.Tuple, ast.List)):
            items = [self.evaluate(e) for e in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.Dict):
            return {self.evaluate(k): self.evaluate(v) for k, v in zip(node.keys, node.values)}
        try:
            return ast.literal_eval(node)
        except ValueError:
            raise _NotStatic(ast.dump(node)) from None


@functools.lru_cache(maxsize=None)
def _static_module(name: str) -> _StaticModule:
    return _StaticModule(name)


def _comments(source: str) -> Tuple[Dict[int, str], Dict[int, str]]:
    """({line: text} of comment-only lines, {line: text} of comments after code)."""
    alone, trailing = {}, {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            line = token.start[0]
            text = token.string.lstrip("#").strip()
            if token.line.strip().startswith("#"):
                alone[line] = text
            else:
                trailing[line] = text
    return alone, trailing


def _field_help(line: int, alone: Dict[int, str], trailing: Dict[int, str]) -> str:
    """The comment lines right above ``line`` and the comment at its end, joined."""
    above = []
    previous = line - 1
    while previous in alone:
        above.insert(0, alone[previous])
        previous -= 1
    parts = above + ([trailing[line]] if line in trailing else [])
    return " ".join(p for p in parts if p)


def _name_of(node: ast.AST) -> str:
    """The last part of a name: ``Optional`` for ``typing.Optional``, ``field`` for
    ``dataclasses.field``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _subscript_args(node: ast.Subscript) -> List[ast.AST]:
    inner = node.slice
    if type(inner).__name__ == "Index":  # Python < 3.9 wraps the subscript
        inner = inner.value  # type: ignore
    return list(inner.elts) if isinstance(inner, ast.Tuple) else [inner]


def _kind(annotation: ast.AST, where: str) -> str:
    """The flag kind of a field's annotation; ``Optional`` adds nothing (every flag takes None)."""
    name = _name_of(annotation)
    if name in _SCALARS and not isinstance(annotation, ast.Subscript):
        return name
    if isinstance(annotation, ast.Subscript):
        outer = _name_of(annotation.value)
        args = _subscript_args(annotation)
        if outer == "Optional" and len(args) == 1:
            return _kind(args[0], where)
        if outer == "Tuple" and len(args) == 2 and _name_of(args[0]) == "str" and (
                type(args[1]).__name__ == "Ellipsis" or getattr(args[1], "value", 0) is Ellipsis):
            return "list"
    raise TypeError("%s: a flag cannot have this type; use bool, int, float, str, "
                    "Optional[...] of one, or Tuple[str, ...]" % where)


def _config_location(config: ConfigRef) -> Tuple[str, str]:
    if isinstance(config, str):
        module, _, name = config.partition(":")
        if not name:
            raise ValueError("%r: name a config as 'package.module:ClassName'" % config)
        return module, name
    return config.__module__, config.__qualname__


def _class_node(config: ConfigRef) -> Tuple[_StaticModule, ast.ClassDef, str]:
    """(its module, the class's ast, "module:Class") of a config, read from the source."""
    config, _ = settings_lib.required_names(config)
    module_name, class_name = _config_location(config)
    module = _static_module(module_name)
    found = [n for n in module.tree.body
             if isinstance(n, ast.ClassDef) and n.name == class_name]
    if not found:
        raise ValueError("%s has no class %s" % (module_name, class_name))
    return module, found[0], "%s:%s" % (module_name, class_name)


def _is_class_var(node: ast.AnnAssign) -> bool:
    return _name_of(node.annotation) == "ClassVar" or (
        isinstance(node.annotation, ast.Subscript)
        and _name_of(node.annotation.value) == "ClassVar")


def heading_of(config: ConfigRef) -> str:
    """The heading a config's flags are listed under: its ``HEADING`` class attribute, else
    its docstring's first paragraph (else its name); read from the source, as its fields
    are."""
    module, node, owner = _class_node(config)
    for item in node.body:
        if (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                and item.target.id == "HEADING" and _is_class_var(item)
                and item.value is not None):
            return str(module.evaluate(item.value))
    doc = ast.get_docstring(node)
    if not doc:
        return owner.partition(":")[2]
    return " ".join(doc.strip().split("\n\n")[0].split()).rstrip(".")


def settings_of(config: ConfigRef) -> List[Setting]:
    """The flags of a config dataclass, one per field, read from its module's source."""
    module, class_node, owner = _class_node(config)
    alone, trailing = _comments(module.source)
    lines = module.source.splitlines()
    out = []
    for node in class_node.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        name = node.target.id
        where = "%s.%s (%s)" % (owner, name, lines[node.lineno - 1].strip())
        if _is_class_var(node):
            continue
        kind = _kind(node.annotation, where)
        default, choices, required = None, None, True
        value = node.value
        try:
            if isinstance(value, ast.Call) and _name_of(value.func) == "field":
                keywords = {k.arg: k.value for k in value.keywords}
                if "default_factory" in keywords:
                    raise TypeError("%s: a flag needs a plain default, not default_factory"
                                    % where)
                if "default" in keywords:
                    default, required = module.evaluate(keywords["default"]), False
                if "metadata" in keywords:
                    given = module.evaluate(keywords["metadata"]).get("choices")
                    choices = tuple(given) if given is not None else None
            elif value is not None:
                default, required = module.evaluate(value), False
        except _NotStatic as e:
            raise TypeError("%s: the default must be a constant (%s)" % (where, e)) from None
        if choices is not None and kind != "str":
            raise TypeError("%s: only str fields take choices" % where)
        if kind == "list" and default is not None:
            default = list(default)
        help_text = _field_help(node.lineno, alone, trailing)
        if not help_text:
            raise TypeError("%s has no comment: write one above it, it is the flag's help"
                            % where)
        out.append(Setting(name=name, owner=owner, kind=kind, default=default,
                           required=required, choices=choices, help=help_text))
    return out


def command_settings(*configs: ConfigRef) -> List[Setting]:
    """The ``Setting``s of a command's configs, in order, as its flags are made: a field that
    a ``settings.Required`` names is required there, without its default. A field name that
    two of the configs share is an error: each setting has one owner, and its flag one
    meaning."""
    settings = []  # type: List[Setting]
    owners = {}  # type: Dict[str, str]
    for ref in configs:
        config, required = settings_lib.required_names(ref)
        found = settings_of(config)
        unknown = required - {s.name for s in found}
        if unknown:
            raise ValueError("%s has no field %s" % (config, ", ".join(sorted(unknown))))
        for s in found:
            if s.name in required:  # required by this command: no default shown or taken
                s = dataclasses.replace(s, default=None, required=True)
            if s.name in owners:
                raise ValueError("%s and %s both have a field %s: give the setting one owner"
                                 % (owners[s.name], s.owner, s.name))
            owners[s.name] = s.owner
            settings.append(s)
    return settings


def define_flags(*configs: ConfigRef, flag_values: flags.FlagValues = FLAGS,
                 module_name: Optional[str] = None) -> List[Setting]:
    """Defines one absl flag per field of the configs; returns their ``Setting``s
    (``command_settings``).

    ``module_name`` is the module the flags are listed under in ``--helpfull`` (absl's default
    is the calling module).
    """
    settings = command_settings(*configs)
    extra = {"flag_values": flag_values}
    if module_name:
        extra["module_name"] = module_name
    for s in settings:
        if s.choices is not None:
            flags.DEFINE_enum(s.name, s.default, list(s.choices), s.help, **extra)
        elif s.kind == "bool":
            flags.DEFINE_bool(s.name, s.default, s.help, **extra)
        elif s.kind == "int":
            flags.DEFINE_integer(s.name, s.default, s.help, **extra)
        elif s.kind == "float":
            flags.DEFINE_float(s.name, s.default, s.help, **extra)
        elif s.kind == "list":
            flags.DEFINE_list(s.name, s.default, s.help, **extra)
        else:
            flags.DEFINE_string(s.name, s.default, s.help, **extra)
        if s.required:
            flags.mark_flag_as_required(s.name, flag_values=flag_values)
    return settings


def config_from_flags(cls: type, flag_values: flags.FlagValues = FLAGS) -> Any:
    """``cls`` built from the parsed flags named as its fields; it checks itself."""
    values = {}
    for field in dataclasses.fields(cls):
        value = flag_values[field.name].value
        values[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


@dataclasses.dataclass(frozen=True)
class CommonConfig:
    """What every command takes besides its own settings."""

    HEADING: ClassVar[str] = "Every command"

    # Show the full traceback when something goes wrong.
    verbose: bool = False


# --verbose, listed under this module in --helpfull.
COMMON_SETTINGS = tuple(define_flags(CommonConfig))


def groups(settings: Sequence[Setting]) -> List[Tuple[str, List[Setting]]]:
    """(heading, settings) per config heading, in the order the configs come; within one, the
    fields' order."""
    out = []  # type: List[Tuple[str, List[Setting]]]
    index = {}  # type: Dict[str, int]
    for s in settings:
        heading = heading_of(s.owner)
        if heading not in index:
            index[heading] = len(out)
            out.append((heading, []))
        out[index[heading]][1].append(s)
    return out


def default_text(setting: Setting) -> Optional[str]:
    """The default as one would type it after ``--name=`` (0.9999, false, bias,LayerNorm);
    ``""`` for an empty one; None for a required flag or one unset by default."""
    value = setting.default
    if setting.required or value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    text = repr(value) if isinstance(value, float) else str(value)
    return text if text else '""'


def value_text(setting: Setting) -> str:
    """What the flag takes: ``<a|b>`` for choices, else ``<int>``, ``<float>``, ``<text>``,
    ``<comma-separated list>``, ``<true|false>`` (a bool flag also takes ``--name`` and
    ``--noname``)."""
    if setting.choices is not None:
        return "<%s>" % "|".join(setting.choices)
    return {"bool": "<true|false>", "int": "<int>", "float": "<float>", "str": "<text>",
            "list": "<comma-separated list>"}[setting.kind]


def status_text(setting: Setting) -> str:
    """"(required)", "(default: VALUE)" or "(default: unset)"."""
    if setting.required:
        return "(required)"
    default = default_text(setting)
    return "(default: %s)" % ("unset" if default is None else default)


def help_text(doc: str, settings: Sequence[Setting]) -> str:
    """``--help``: ``doc`` (the command's docstring: what it does, an example), then the flags
    under their configs' headings, each with what it takes, "(required)" or its default, and
    its help."""
    lines = [textwrap.dedent(doc).strip("\n"), "",
             "Flags, by what they set (--helpfull also lists absl's own):"]
    for heading, group in groups(settings):
        lines += ["", heading + ":"]
        for s in group:
            name = ("--[no]%s" % s.name if s.kind == "bool" and not s.required
                    else "--%s=%s" % (s.name, value_text(s)))
            lines.append("  %s  %s" % (name, status_text(s)))
            lines += textwrap.wrap(s.help, _WIDTH, initial_indent=" " * 6,
                                   subsequent_indent=" " * 6)
    return "\n".join(lines) + "\n"


def _asks_for(argv: Sequence[str], names: Sequence[str]) -> bool:
    return any(a.lstrip("-").split("=")[0] in names for a in argv[1:] if a.startswith("-"))


def _print_help(settings: Sequence[Setting]) -> None:
    """Prints ``help_text`` of the program run (its ``__main__``'s docstring) to stdout."""
    doc = getattr(sys.modules.get("__main__"), "__doc__", None) or (
        "USAGE: %s [flags]\n" % sys.argv[0])
    try:
        sys.stdout.write(help_text(doc, settings))
        sys.stdout.flush()
    except BrokenPipeError:  # --help | head: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.;])\s", text, maxsplit=1)[0].rstrip(".;")


def parse_flags(argv: Sequence[str], settings: Sequence[Setting],
                flag_values: flags.FlagValues = FLAGS) -> List[str]:
    """``flag_values(argv)``; a flag error is one line on stderr and exit status 2.

    Asking for help is not an error: ``--help`` and ``--helpfull`` exit with status 0.
    """
    try:
        return flag_values(list(argv))
    except flags.Error as e:
        missing = [s for s in settings if s.required and flag_values.is_parsed()
                   and flag_values[s.name].value is None]
        if len(missing) == 1:
            message = "--%s is required: %s" % (missing[0].name,
                                                _first_sentence(missing[0].help))
        elif missing:
            message = "%s are required (--helpfull describes them)" % ", ".join(
                "--" + s.name for s in missing)
        else:
            message = " ".join(str(e).split())
        print("error: %s" % message, file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except SystemExit as e:
        # absl exits with status 1 after printing the help a user asked for.
        if e.code == 1 and _asks_for(argv, _HELP_FLAGS):
            sys.exit(0)
        raise


def run(main: Callable[[List[str]], None], configs: Sequence[ConfigRef] = ()) -> None:
    """Defines the configs' flags, then ``absl.app.run(main)`` with errors as one line.

    ``--help`` lists the flags under their configs' headings (``help_text``); ``--helpfull``
    is absl's, the flags under ``main``'s module. Bad
    input exits with status 2 and one line on stderr (``error: ...``) naming the flag or file
    and the fix; ``--verbose`` re-raises instead, with the traceback. A
    positional argument is an error too: every setting is a ``--flag``, and a stray word is
    usually a value given without ``=`` to a bool flag (``--do_train False``).
    """
    module = main.__module__
    settings = define_flags(*configs, module_name=module)
    # --help lists the flags of the program run (absl keys them by sys.argv[0]).
    for name in [s.name for s in settings] + ["verbose"]:
        FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS[name])
    # An entry point's __main__ has no docstring for --help; the command's says what it does.
    entry = sys.modules.get("__main__")
    if entry is not None and not getattr(entry, "__doc__", None):
        entry.__doc__ = getattr(sys.modules.get(module), "__doc__", None)

    # Warnings as one line each ("warning: ..."), without the source line under them.
    warnings.formatwarning = lambda message, *args, **kwargs: "warning: %s\n" % message

    def guarded(argv: List[str]) -> None:
        try:
            if len(argv) > 1:
                raise NorbertError("unexpected arguments %s: every setting is a --flag "
                                   "(a bool flag takes --name=false, not --name false)"
                                   % " ".join(argv[1:]))
            main(argv)
        except NorbertError as e:
            if FLAGS.verbose:
                raise
            print("error: %s" % e, file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt as e:
            if FLAGS.verbose:
                raise
            terminated = bool(e.args) and e.args[0] == "SIGTERM"
            print("stopped by SIGTERM" if terminated else "interrupted", file=sys.stderr)
            sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)

    def parser(argv: List[str]) -> List[str]:
        if _asks_for(argv, _GROUPED_HELP_FLAGS):  # grouped by config; --helpfull stays absl's
            _print_help(list(settings) + list(COMMON_SETTINGS))
            sys.exit(0)
        return parse_flags(argv, settings)

    app.run(guarded, flags_parser=parser)
