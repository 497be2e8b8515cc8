"""The compatibility promise, checked statically: TF 1.15 API and Python 3.7 syntax.

Every ``tf.*`` attribute chain in the given files must exist in TensorFlow 1.15's public API
(``tools/data/tf1.15_api.txt``, read from the 1.15 wheels by ``tools/tf115_api.py``), and every
file must parse as Python 3.7 and avoid the best-known standard-library names added later.

    python tools/check_compat.py norbert scripts
"""

import ast
import os
import sys
from typing import Dict, Iterable, List, Set, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API_FILE = os.path.join(REPO, "tools", "data", "tf1.15_api.txt")

# Standard-library names newer than Python 3.7 that are easy to reach for.
NEWER_THAN_37 = {
    "removeprefix": "3.9", "removesuffix": "3.9", "cached_property": "3.8", "cache": "3.9",
    "prod": "3.8", "isqrt": "3.8", "Literal": "3.8", "Protocol": "3.8", "Final": "3.8",
    "TypedDict": "3.8", "get_origin": "3.8", "importlib.metadata": "3.8", "to_thread": "3.9",
    "shlex.join": "3.8", "zoneinfo": "3.9", "graphlib": "3.9",
}


def load_api(path: str = API_FILE) -> Tuple[Set[str], Set[str]]:
    modules, symbols = set(), set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            kind, _, name = line.strip().partition(" ")
            if kind == "M":
                modules.add(name)
            elif kind == "S":
                symbols.add(name)
    return modules, symbols


def _tf_aliases(tree: ast.AST) -> Dict[str, str]:
    """Local names bound to TensorFlow modules, mapped to their API path (``tf`` based)."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "tensorflow" or alias.name.startswith("tensorflow."):
                    path = "tf" + alias.name[len("tensorflow"):]
                    if alias.asname:
                        aliases[alias.asname] = path
                    else:
                        aliases["tensorflow"] = "tf"
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "tensorflow" or node.module.startswith("tensorflow."):
                base = "tf" + node.module[len("tensorflow"):]
                for alias in node.names:
                    aliases[alias.asname or alias.name] = base + "." + alias.name
    return aliases


def _chains(tree: ast.AST, aliases: Dict[str, str]) -> Iterable[Tuple[int, str]]:
    """(line, dotted API path) for every maximal attribute chain rooted at a TF alias."""
    inner = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            inner.add(id(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            parts = []
            cur = node
            while isinstance(cur, ast.Attribute):
                parts.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id in aliases:
                yield node.lineno, ".".join([aliases[cur.id]] + parts[::-1])
    for name, path in aliases.items():
        yield 0, path  # the imports themselves


def check_tf_api(path: str, source: str, api: Tuple[Set[str], Set[str]]) -> List[str]:
    modules, symbols = api
    problems = []
    tree = ast.parse(source)
    for line, dotted in _chains(tree, _tf_aliases(tree)):
        parts = dotted.split(".")
        cur = parts[0]
        for part in parts[1:]:
            if part.startswith("__"):  # __version__, __file__: every module has them
                break
            cand = cur + "." + part
            if cand in modules:
                cur = cand
                continue
            if cand not in symbols:
                problems.append("%s:%d: %s is not in TensorFlow 1.15's API" % (path, line, cand))
            break
    return problems


def check_python37(path: str, source: str) -> List[str]:
    try:
        tree = ast.parse(source, feature_version=(3, 7))
    except SyntaxError as e:
        return ["%s:%s: not Python 3.7 syntax: %s" % (path, e.lineno, e.msg)]
    problems = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Attribute):
            # A plain name (``removeprefix``), or a module's (``shlex.join``): a dotted key
            # names a module's attribute, so that a ``.join`` or ``.metadata`` of anything else
            # passes.
            name = node.attr
            if isinstance(node.value, ast.Name):
                dotted = "%s.%s" % (node.value.id, node.attr)
                if dotted in NEWER_THAN_37:
                    name = dotted
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in NEWER_THAN_37:
                    name = alias.name
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                for candidate in (alias.name, "%s.%s" % (node.module, alias.name)):
                    if candidate in NEWER_THAN_37:
                        name = candidate
            if node.module in NEWER_THAN_37:
                name = node.module
        if name in NEWER_THAN_37:
            problems.append(
                "%s:%d: %s needs Python %s" % (path, node.lineno, name, NEWER_THAN_37[name])
            )
    return problems


def python_files(roots: Iterable[str]) -> List[str]:
    files = []
    for root in roots:
        if root.endswith(".py"):
            files.append(root)
        for folder, _, names in os.walk(root):
            files.extend(os.path.join(folder, n) for n in sorted(names) if n.endswith(".py"))
    return sorted(files)


def check(roots: Iterable[str]) -> List[str]:
    api = load_api()
    problems = []
    for path in python_files(roots):
        with open(path, encoding="utf-8") as f:
            source = f.read()
        problems += check_python37(path, source) + check_tf_api(path, source, api)
    return problems


if __name__ == "__main__":
    found = check(sys.argv[1:] or [os.path.join(REPO, "norbert"), os.path.join(REPO, "scripts")])
    print("\n".join(found) or "ok")
    sys.exit(1 if found else 0)
