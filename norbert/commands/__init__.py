"""The command-line tools, one module each: its flags (made from the step's config dataclasses),
``main(argv)`` and ``run()``, the console entry point (``norbert-build-vocab``, ...).

``scripts/*.py`` call the same ``run()``: Google's paths and flags keep working. A module here
imports no TensorFlow when imported, so that ``--help`` and a bad flag answer at once.
"""

import os

# TensorFlow's C++ start-up lines (CPU features, MLIR passes) are INFO: quiet unless the user
# asks for them. Set before any command imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
