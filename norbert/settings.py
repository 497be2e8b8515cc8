"""Keyword settings for the notebook API: ``build_vocab(input_file=..., vocab_size=...)``.

Each step of the library takes typed config objects (what the scripts build from their flags).
A notebook may pass the same settings as keyword arguments instead, named as the flags are; this
module sorts them into the step's config objects, so that both ways reach the same code.
"""

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple


def _names(cls) -> Tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(cls))


def make_configs(step: str, given: Dict[str, Any], settings: Dict[str, Any],
                 classes: Sequence[type]) -> Tuple[Any, ...]:
    """One config per class in ``classes``: the one given, or one built from ``settings``.

    ``given`` maps each class's parameter name to the object passed (or None). A setting goes to
    the class with a field of its name; a class whose object was passed takes no settings, so
    that a setting is never silently ignored. Raises TypeError naming the step for an unknown or
    misplaced setting, and for a missing required one, as a wrong keyword to any function does.
    """
    owners = {}
    for cls in classes:
        for name in _names(cls):
            owners[name] = cls
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
        missing = [name for name in _required(cls) if name not in mine]
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
