"""The TF-version promise: TF 1.15 API symbols only, Python 3.7 syntax (checked statically)."""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))

import check_compat  # noqa: E402


@pytest.fixture(scope="module")
def api():
    return check_compat.load_api()


def test_listing_is_tensorflow_1_15(api):
    modules, symbols = api
    wanted = {"tf.compat.v1", "tf.compat.v1.nn", "tf.io.gfile", "tf.compat.v1.estimator.tpu"}
    assert wanted <= modules
    assert {"tf.compat.v1.get_variable", "tf.compat.v1.estimator.tpu.TPUEstimator"} <= symbols
    assert "tf.compat.v1.nn.gelu" not in symbols  # added in TF 2.4


def test_checker_finds_symbols_missing_in_1_15(api):
    source = (
        "import tensorflow.compat.v1 as tf\n"
        "import tensorflow as tf2\n"
        "def f(x):\n"
        "    y = tf.nn.gelu(x)\n"  # 2.4+
        "    z = tf.layers.dense(x, 3)\n"  # exists in 1.15
        "    return tf2.io.gfile.GFile, tf2.experimental.numpy.ones\n"
    )
    problems = check_compat.check_tf_api("m.py", source, api)
    assert problems == [
        "m.py:4: tf.compat.v1.nn.gelu is not in TensorFlow 1.15's API",
        "m.py:6: tf.experimental.numpy is not in TensorFlow 1.15's API",
    ]


def test_checker_finds_newer_python():
    assert check_compat.check_python37("m.py", "if (n := 3):\n    pass\n")
    assert check_compat.check_python37("m.py", "def f(a, /):\n    pass\n")
    assert check_compat.check_python37("m.py", "x = 'ab'.removeprefix('a')\n") == [
        "m.py:1: removeprefix needs Python 3.9"
    ]
    assert check_compat.check_python37("m.py", "from typing import List\nx: List[int] = []\n") == []
    # A module's newer attribute, however reached; the same name on anything else passes.
    for source in ("import importlib.metadata\n", "from importlib import metadata\n",
                   "import importlib\nv = importlib.metadata.version('x')\n"):
        assert check_compat.check_python37("m.py", source)[-1].endswith(
            "importlib.metadata needs Python 3.8"), source
    assert check_compat.check_python37("m.py", "import shlex\nshlex.join([])\n") == [
        "m.py:2: shlex.join needs Python 3.8"]
    assert check_compat.check_python37("m.py", "n = f.metadata.num_rows\n', '.join([])\n") == []


def test_norbert_and_scripts_keep_the_promise():
    roots = [os.path.join(REPO, "norbert"), os.path.join(REPO, "scripts")]
    assert check_compat.python_files(roots)
    assert check_compat.check(roots) == []
