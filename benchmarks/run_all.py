"""Runs every benchmark in this folder and rewrites BENCHMARKS.md from what they print.

Each benchmark is a script ``benchmarks/<name>.py`` that measures norbert against the reference
or a peer in the same run and prints one Markdown section (``## ...``) to stdout. Each runs in a
process of its own: the reference's scripts define clashing absl flags, and peak memory must
not leak from one benchmark into the next. ``python benchmarks/run_all.py tokenizer`` runs one
and replaces its sections (by their ``## `` titles) in BENCHMARKS.md, dated, leaving the rest.
"""

import datetime
import re
import os
import platform
import subprocess
import sys

from common import QUICK

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def _machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    versions = []
    for module in ("tensorflow", "tokenizers", "numpy"):
        try:
            versions.append("%s %s" % (module, __import__(module).__version__))
        except ImportError:
            pass
    from google.protobuf.internal import api_implementation

    versions.append("protobuf %s backend" % api_implementation.Type())
    return "%s, %d cores usable; Python %s; %s" % (
        cpu,
        len(os.sched_getaffinity(0)),
        platform.python_version(),
        ", ".join(versions),
    )


def main(argv):
    wanted = set(argv[1:])
    names = sorted(
        f[:-3] for f in os.listdir(HERE)
        if f.endswith(".py") and f not in ("run_all.py", "common.py")
    )
    sections = []
    for name in names:
        if wanted and name not in wanted:
            continue
        print("== benchmark %s" % name, file=sys.stderr, flush=True)
        out = subprocess.run(
            [sys.executable, os.path.join(HERE, name + ".py")],
            cwd=REPO,
            stdout=subprocess.PIPE,
            check=True,
            universal_newlines=True,
        ).stdout
        sections.append(out.strip())
        print(out, flush=True)
    today = datetime.date.today()
    path = os.path.join(REPO, "BENCHMARKS.md")
    if QUICK:
        return  # smoke runs measure too little to record
    if wanted:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for section in sections:
            text = replace_sections(text, section, "(Re-measured alone on %s.)" % today)
    else:
        page = [
            "# Benchmarks",
            "",
            "Written by `make bench` (`python benchmarks/run_all.py`) on %s." % today,
            "Every figure is a ratio against the reference or a peer measured in the same run.",
            "",
            "Machine: %s." % _machine(),
            "",
        ]
        text = "\n".join(page + ["\n\n".join(sections), ""])
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def replace_sections(page: str, output: str, note: str) -> str:
    """``page`` with each ``## `` section of ``output``, ``note`` added, in place of the one of
    the same title (appended when new). A section runs to the next ``## `` title or the end."""
    parts = re.split(r"(?m)^(?=## )", output.strip())
    for part in (p.strip() for p in parts if p.strip()):
        title = part.splitlines()[0]
        part = "%s\n\n%s" % (part, note)
        pattern = re.compile(r"(?ms)^%s\n.*?(?=^## |\Z)" % re.escape(title))
        if pattern.search(page):
            page = pattern.sub(lambda m: part + "\n\n", page, count=1)
        else:
            page = page.rstrip("\n") + "\n\n" + part + "\n"
    return page.rstrip("\n") + "\n"


if __name__ == "__main__":
    main(sys.argv)
