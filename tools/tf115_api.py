"""Writes tools/data/tf1.15_api.txt: every public name of TensorFlow 1.15's Python API.

The listing is read from the generated API modules inside the wheels that the registry serves
(TensorFlow's ``tensorflow_core/_api/v1/**/__init__.py`` and the estimator's
``api/_v1/estimator/**/__init__.py``), without installing them. Regenerate with:

    pip download --no-deps --only-binary=:all: --python-version 3.7 --implementation cp \\
        --platform manylinux2010_x86_64 tensorflow==1.15.0 tensorflow-estimator==1.15.1 -d wheels
    python tools/tf115_api.py wheels/tensorflow-1.15.0-*.whl wheels/tensorflow_estimator-1.15.1-*.whl

Each line is ``M name`` for a module or ``S name`` for any other symbol, with ``tf`` standing for
both ``tensorflow`` (whose top level is the v1 API in 1.15) and its ``compat.v1`` twin.
"""

import ast
import os
import sys
import zipfile

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "data",
                   "tf1.15_api.txt")
TF_ROOT = "tensorflow_core/_api/v1/"
EST_ROOT = "tensorflow_estimator/python/estimator/api/_v1/estimator/"


def _names(source: str):
    """Public names an API ``__init__.py`` binds with ``from x import y [as z]``."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            for alias in node.names:
                name = alias.asname or alias.name
                if not name.startswith("_"):
                    yield name


def _module_files(wheel, root):
    for path in wheel.namelist():
        if path.startswith(root) and path.endswith("/__init__.py"):
            rel = path[len(root):-len("__init__.py")].strip("/")
            yield (rel.replace("/", ".") if rel else ""), wheel.read(path).decode("utf-8")


def listing(tf_wheel: str, estimator_wheel: str):
    modules, symbols = set(), set()

    def add(module: str, source: str):
        modules.add(module)
        for name in _names(source):
            symbols.add(module + "." + name)

    with zipfile.ZipFile(tf_wheel) as wheel:
        for rel, source in _module_files(wheel, TF_ROOT):
            add("tf." + rel if rel else "tf", source)
        add("tf", wheel.read("tensorflow_core/__init__.py").decode("utf-8"))
    with zipfile.ZipFile(estimator_wheel) as wheel:
        for rel, source in _module_files(wheel, EST_ROOT):
            for base in ("tf.estimator", "tf.compat.v1.estimator"):
                add(base + ("." + rel if rel else ""), source)
    # Submodules are bound by "from tensorflow._api.v1.x import y": they are modules, not symbols.
    symbols -= modules
    # Both roots of the v1 API hook these in at import time rather than by generated imports.
    for root in ("tf", "tf.compat.v1"):
        modules.update({root + ".estimator", root + ".keras"})
        symbols.add(root + ".flags")
    return sorted(modules), sorted(symbols)


def main(argv):
    if len(argv) != 3:
        raise SystemExit(__doc__)
    modules, symbols = listing(argv[1], argv[2])
    with open(OUT + ".tmp", "w", encoding="utf-8") as f:
        f.write("# TensorFlow 1.15.0 + tensorflow-estimator 1.15.1 public API; "
                "tools/tf115_api.py\n")
        f.writelines("M %s\n" % m for m in modules)
        f.writelines("S %s\n" % s for s in symbols)
    os.replace(OUT + ".tmp", OUT)
    print("%d modules, %d symbols -> %s" % (len(modules), len(symbols), OUT))


if __name__ == "__main__":
    main(sys.argv)
