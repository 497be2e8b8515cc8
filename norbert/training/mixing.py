"""Mixing record sources: named groups of files, each drawn with its own share while training.

``--input_file=nb=data/nb-*,nn=data/nn-*,en=data/en-*`` names three groups (``name=glob``,
comma-separated); a list of plain globs, without names, is one set read as it always was. A
group's share of the records drawn is proportional to its size (records) to the power
``--sampling_exponent`` (exponentially smoothed sampling: 1 in proportion to size, 0 uniform,
mBERT 0.7, XLM-R 0.3: small groups, a language with little text, are seen more often than
their size says), or given outright with ``--sampling_weights=nb=0.5,nn=0.3,en=0.2``.

Pure functions only (no I/O, no TensorFlow): the input pipeline expands the globs and counts
the records, then builds one dataset per group and samples from them with these shares.

An item reads as ``name=glob`` when the text before its first ``=`` holds no path characters
(``/``, ``\\``, ``:``, glob characters): ``data/lang=nb/*`` is a plain glob; a file in the
working directory whose name has a ``=`` is named ``./lang=nb.tfrecord``.
"""

import dataclasses
import math
import re
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple

from norbert.errors import NorbertError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_PATH_CHARS = re.compile(r"[/\\:*?\[\]]")
PROPORTIONAL = 1.0  # the exponent when none is given: shares in proportion to size


@dataclasses.dataclass(frozen=True)
class MixingConfig:
    """How the named groups of --input_file (name=glob,...) share the training records."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Mixing"

    # With named groups in input_file (name=glob,...): each group's share of the records drawn
    # is proportional to its size (records) to this power. Unset: 1, in proportion to size; 0:
    # uniform; mBERT used 0.7, XLM-R 0.3 (small groups drawn more often than their size says).
    sampling_exponent: Optional[float] = None
    # With named groups in input_file: the shares themselves, name=weight for every group
    # (nb=0.5,nn=0.3,en=0.2), normalised to sum 1; instead of sampling_exponent.
    sampling_weights: Optional[str] = None

    def __post_init__(self) -> None:
        a = self.sampling_exponent
        if a is not None and not (math.isfinite(a) and a >= 0):
            raise NorbertError("--sampling_exponent=%s must be a number from 0 (uniform) up; 1 "
                               "draws in proportion to size, 0.7 and 0.3 smooth" % a)
        if self.sampling_weights is not None:
            if a is not None:
                raise NorbertError("--sampling_weights and --sampling_exponent exclude each "
                                   "other: give the shares, or the exponent that makes them")
            parse_weights(self.sampling_weights)

    @property
    def given(self) -> bool:
        return self.sampling_exponent is not None or self.sampling_weights is not None

    @property
    def rule(self) -> str:
        """How the shares are made, for the log: ``records^0.7``, ``--sampling_weights``."""
        if self.sampling_weights is not None:
            return "--sampling_weights"
        a = PROPORTIONAL if self.sampling_exponent is None else self.sampling_exponent
        return "records^%g" % a

    def shares(self, names: Sequence[str], sizes: Sequence[int],
               flag: str = "--input_file") -> List[float]:
        """Each group's share (summing to 1), from ``sizes`` (records) or the weights."""
        if self.sampling_weights is None:
            a = PROPORTIONAL if self.sampling_exponent is None else self.sampling_exponent
            return shares_by_exponent(sizes, a)
        weights = parse_weights(self.sampling_weights)
        if set(weights) != set(names):
            missing = [n for n in names if n not in weights]
            extra = [n for n in weights if n not in names]
            raise NorbertError(
                "--sampling_weights must name exactly the groups of %s (%s)%s%s" % (
                    flag, ", ".join(names),
                    "; no weight for %s" % ", ".join(missing) if missing else "",
                    "; no group %s" % ", ".join(extra) if extra else ""))
        total = sum(weights.values())
        return [weights[n] / total for n in names]


@dataclasses.dataclass(frozen=True)
class Group:
    """One named group of record files and its share of the records drawn while training."""

    name: str
    files: Tuple[str, ...]
    records: int
    share: float


def _named(item: str) -> Optional[Tuple[str, str]]:
    """(name, glob) for an item ``name=glob``; None for a plain glob."""
    name, sep, pattern = item.partition("=")
    if not sep or _PATH_CHARS.search(name):
        return None
    return name.strip(), pattern.strip()


def parse_groups(spec: str, flag: str = "--input_file") -> Optional[List[Tuple[str, str]]]:
    """[(name, glob)] of ``name=glob,...``; None for plain globs (no item names a group).

    Raises ``NorbertError`` naming ``flag`` for an item without a name among named ones, a
    name used twice or not identifier-like, and a group without a glob.
    """
    items = [p.strip() for p in spec.split(",") if p.strip()]
    named = [_named(item) for item in items]
    if all(n is None for n in named):
        return None
    out = []
    for item, found in zip(items, named):
        if found is None:
            raise NorbertError("%s: %r names no group, but others do: write every item as "
                               "name=glob (or give plain globs only, without mixing)"
                               % (flag, item))
        name, pattern = found
        if not _NAME.match(name):
            raise NorbertError("%s: group name %r: use letters, digits, _ and -, starting with a "
                               "letter (nb=data/nb-*)" % (flag, name))
        if not pattern:
            raise NorbertError("%s: group %s has no glob: write %s=<files or glob>"
                               % (flag, name, name))
        if name in [n for n, _ in out]:
            raise NorbertError("%s: group %s is named twice: give each group one name and one "
                               "glob" % (flag, name))
        out.append((name, pattern))
    return out


def parse_weights(spec: str, flag: str = "--sampling_weights") -> Dict[str, float]:
    """{name: weight} of ``name=weight,...``; each weight a positive number."""
    out = {}  # type: Dict[str, float]
    for item in [p.strip() for p in spec.split(",") if p.strip()]:
        name, sep, value = (s.strip() for s in item.partition("="))
        try:
            weight = float(value) if sep else None
        except ValueError:
            weight = None
        if weight is None or not _NAME.match(name):
            raise NorbertError("%s: %r is not name=weight: write e.g. nb=0.5,nn=0.3,en=0.2"
                               % (flag, item))
        if not (math.isfinite(weight) and weight > 0):
            raise NorbertError("%s: %s=%s: a weight must be a positive number (leave a group "
                               "out of --input_file to drop it)" % (flag, name, value))
        if name in out:
            raise NorbertError("%s: %s has two weights: give one" % (flag, name))
        out[name] = weight
    if not out:
        raise NorbertError("%s is empty: write name=weight for each group of --input_file"
                           % flag)
    return out


def shares_by_exponent(sizes: Sequence[int], exponent: float) -> List[float]:
    """``size^exponent`` normalised: exponentially smoothed sampling (0: uniform)."""
    if any(n <= 0 for n in sizes):
        raise ValueError("every group needs records: %s" % list(sizes))
    # Logs keep size^a finite for any size and exponent; the largest term is 1.
    logs = [exponent * math.log(n) for n in sizes]
    top = max(logs)
    terms = [math.exp(v - top) for v in logs]
    total = sum(terms)
    return [t / total for t in terms]


def mix(named: Sequence[Tuple[str, Sequence[str]]], sizes: Sequence[int], config: MixingConfig,
        flag: str = "--input_file") -> Tuple[Group, ...]:
    """The groups with their shares: ``named`` is [(name, files)], ``sizes`` their records.

    Raises ``NorbertError`` for a group without records (it could never be drawn from).
    """
    for (name, files), size in zip(named, sizes):
        if size <= 0:
            raise NorbertError("%s: group %s holds no records (%d files, all empty): rebuild "
                               "them or leave the group out" % (flag, name, len(files)))
    shares = config.shares([n for n, _ in named], sizes, flag)
    return tuple(Group(name, tuple(files), size, share)
                 for (name, files), size, share in zip(named, sizes, shares))


def describe(groups: Sequence[Group], config: MixingConfig) -> List[str]:
    """Log lines: how the shares are made, then one per group (files, records, share)."""
    total = sum(g.records for g in groups)
    lines = ["mixing %d record groups by %s" % (len(groups), config.rule)]
    for g in groups:
        lines.append("group %s: %d files, %d records (%.2f%% of all), share %.2f%%"
                     % (g.name, len(g.files), g.records, 100.0 * g.records / total,
                        100.0 * g.share))
    return lines
