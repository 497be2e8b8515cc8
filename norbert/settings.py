"""Keyword settings for the notebook API: ``build_vocab(input_file=..., vocab_size=...)``.

Each step of the library takes typed config objects (what the scripts build from their flags).
A notebook may pass the same settings as keyword arguments instead, named as the flags are; this
module sorts them into the step's config objects, so that both ways reach the same code.

A config shared by several steps declares each setting once, with one default. A step that
needs a setting its config defaults (the export needs ``do_lower_case``: a model's casing is
stated, never guessed) says so with ``make_configs(required=...)``, and its command lists the
config as ``Required(config, names)``: the flag machinery makes those flags required, with no
default (``required_names``).
"""

import dataclasses
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple


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
        out.append(cls(**mine))
    return tuple(out)


def _required(cls) -> List[str]:
    """The fields of a dataclass without a default."""
    return [f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


def one_config(step: str, config: Optional[Any], settings: Dict[str, Any], cls: type) -> Any:
    """``make_configs`` for a step with a single config object, passed as ``config``."""
    return make_configs(step, {"config": config}, settings, [cls])[0]
