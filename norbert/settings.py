"""Keyword settings for the notebook API: ``build_vocab(input_file=..., vocab_size=...)``.

Each step of the library takes typed config objects (what the scripts build from their flags).
A notebook may pass the same settings as keyword arguments instead, named as the flags are; this
module sorts them into the step's config objects, so that both ways reach the same code.

A config shared by several steps declares each setting once, with one default. A step that
needs a setting its config defaults (the export needs ``do_lower_case``: a model's casing is
stated, never guessed) says so with ``make_configs(required=...)``, and its command lists the
config as ``Required(config, names)``: the flag machinery makes those flags required, with no
default (``required_names``).

Errors speak the caller's language: the configs' checks name the flag (``--max_seq_length``),
which is what a command's user typed; a config built here from keywords, and an entry function
marked ``@keyword_errors`` called with keywords, raise them naming the keyword instead
(``max_seq_length=``). Such a call's warnings name the keywords too.
"""

import contextlib
import dataclasses
import functools
import inspect
import re
import typing
import warnings
from typing import Any, Callable, Collection, Dict, FrozenSet, List, Optional, Sequence, Tuple

from norbert.errors import NorbertError

# A flag in a message: --name, --name=VALUE, or --name: (a problem with its value follows).
_FLAG_RE = re.compile(r"--([A-Za-z_][A-Za-z0-9_]*)(=|(?=:))?")


@dataclasses.dataclass(frozen=True)
class Required:
    """A config as one command takes it: ``names`` are required flags there, without the
    default that the config's fields give them."""

    config: Any  # a config class, or "package.module:ClassName" as the commands name them
    names: Tuple[str, ...]  # field names of ``config``


def required_names(ref: Any) -> Tuple[Any, FrozenSet[str]]:
    """(the config, the names it requires beyond its fields without default) of a command's
    config entry: a config, or a ``Required``."""
    if isinstance(ref, Required):
        return ref.config, frozenset(ref.names)
    return ref, frozenset()


def _names(cls) -> Tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(cls))


def make_configs(step: str, given: Dict[str, Any], settings: Dict[str, Any],
                 classes: Sequence[type], required: Sequence[str] = ()) -> Tuple[Any, ...]:
    """One config per class in ``classes``: the one given, or one built from ``settings``.

    ``given`` maps each class's parameter name to the object passed (or None). A setting goes to
    the class with a field of its name; a class whose object was passed takes no settings, so
    that a setting is never silently ignored. ``required`` names fields that the step needs
    given although their class has a default. Raises TypeError naming the step for an unknown
    or misplaced setting, and for a missing required one, as a wrong keyword to any function
    does.
    """
    owners = {}
    for cls in classes:
        for name in _names(cls):
            owners[name] = cls
    if set(required) - set(owners):  # a step's own mistake, not the caller's
        raise ValueError("%s requires %s, which no config has" % (
            step, ", ".join(sorted(set(required) - set(owners)))))
    unknown = sorted(set(settings) - set(owners))
    if unknown:
        raise TypeError("%s() got unknown setting%s %s; its settings are: %s" % (
            step, "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(sorted(owners))))
    out = []
    for (parameter, value), cls in zip(given.items(), classes):
        mine = {k: v for k, v in settings.items() if owners[k] is cls}
        if value is not None:
            if mine:
                raise TypeError("%s(): pass %s inside %s=%s(...), or leave %s out" % (
                    step, ", ".join(sorted(mine)), parameter, cls.__name__, parameter))
            out.append(value)
            continue
        needed = _required(cls) + [f.name for f in dataclasses.fields(cls)
                                   if f.name in required and f.name not in _required(cls)]
        missing = [name for name in needed if name not in mine]
        if missing:
            raise TypeError("%s(): needs the setting%s %s" % (
                step, "s" if len(missing) > 1 else "", ", ".join(missing)))
        try:
            out.append(cls(**mine))
        except NorbertError as e:
            raise_as_keywords(e, set(owners))
    return tuple(out)


def as_keywords(message: str, names: Collection[str]) -> str:
    """``message`` with each flag of ``names`` written as a keyword: ``--max_seq_length=0``
    as ``max_seq_length=0``, ``--input_file is required`` as ``input_file= is required``,
    ``--input_file: no files match`` as ``input_file: no files match``; other flags as they
    are."""

    def keyword(match: "re.Match") -> str:
        if match.group(1) not in names:
            return match.group(0)
        return match.group(1) + ("" if match.group(2) == "" else "=")

    return _FLAG_RE.sub(keyword, message)


def raise_as_keywords(error: NorbertError, names: Collection[str]) -> None:
    """Raises ``error`` again (its type and traceback kept) naming ``names`` as keywords."""
    if error.args and isinstance(error.args[0], str):
        error.args = (as_keywords(error.args[0], names),) + error.args[1:]
    raise error


@contextlib.contextmanager
def warnings_as_keywords(names: Collection[str]):
    """Within it, a warning shown names each flag of ``names`` as a keyword, shown by what
    would have shown it (the default, a test's recorder, ...), when it would have been."""
    with warnings.catch_warnings():  # restores showwarning (and the filters) on the way out
        show = warnings.showwarning

        def rewritten(message, category, filename, lineno, file=None, line=None):
            text = as_keywords(str(message), names)
            if text != str(message):
                try:
                    message = category(text)
                except Exception:  # a warning class with another constructor: the text alone
                    message = text
            show(message, category, filename, lineno, file, line)

        warnings.showwarning = rewritten
        yield


def keyword_errors(function: Callable) -> Callable:
    """Marks an entry function ``f(config=None, ..., **settings)``: called with settings as
    keywords, a ``NorbertError`` raised anywhere in the call (a config's check, or the input
    found wanting later) names the fields of the configs built from the keywords as keywords
    (``max_seq_length=``), not as flags, and so do the warnings the call issues. Called with
    config objects only (as the commands call it), it is unchanged.

    The configs are the parameters annotated ``Optional[SomeConfig]`` (a dataclass).
    """
    signature = inspect.signature(function)
    hints = typing.get_type_hints(function)
    configs = {name: _config_class(hints.get(name)) for name in signature.parameters}
    configs = {name: cls for name, cls in configs.items() if cls is not None}
    settings_name = next(p.name for p in signature.parameters.values()
                         if p.kind is inspect.Parameter.VAR_KEYWORD)

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(*args, **kwargs).arguments
        if not arguments.get(settings_name):
            return function(*args, **kwargs)
        names = set()
        for parameter, cls in configs.items():
            if arguments.get(parameter) is None:  # built from the keywords
                names.update(_names(cls))
        try:
            with warnings_as_keywords(names):
                return function(*args, **kwargs)
        except NorbertError as e:
            raise_as_keywords(e, names)

    return call


def _config_class(hint: Any) -> Optional[type]:
    """``SomeConfig`` of ``Optional[SomeConfig]`` (or of ``SomeConfig``), if a dataclass."""
    candidates = [a for a in getattr(hint, "__args__", (hint,)) if a is not type(None)]
    if len(candidates) == 1 and dataclasses.is_dataclass(candidates[0]):
        return candidates[0]
    return None


def _required(cls) -> List[str]:
    """The fields of a dataclass without a default."""
    return [f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


def one_config(step: str, config: Optional[Any], settings: Dict[str, Any], cls: type) -> Any:
    """``make_configs`` for a step with a single config object, passed as ``config``."""
    return make_configs(step, {"config": config}, settings, [cls])[0]
