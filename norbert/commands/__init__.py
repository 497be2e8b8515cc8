"""The command-line tools, one module each: its flags (made from the step's config dataclasses),
``main(argv)`` and ``run()``, the console entry point (``norbert-build-vocab``, ...).

``scripts/*.py`` call the same ``run()``: Google's paths and flags keep working. A module here
imports no TensorFlow when imported, so that ``--help`` and a bad flag answer at once.
"""
