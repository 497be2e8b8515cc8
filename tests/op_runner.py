"""A per-batch input-pipeline op (``mask_batch``, ``pair_batch``) run on fed numpy features:
one graph and session per op and shapes, kept for the test module and closed after it."""

import pytest

tf = pytest.importorskip("tensorflow").compat.v1


class OpRunner:
    """``run(features, seed)``: ``op(inputs, seed)`` on int32 ``features`` of ``shapes``."""

    def __init__(self, op, shapes):
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.inputs = {k: tf.placeholder(tf.int32, shape) for k, shape in shapes.items()}
            self.seed = tf.placeholder(tf.int64, [2])
            self.outputs = op(self.inputs, self.seed)
        self.session = tf.Session(graph=self.graph)

    def run(self, features, seed):
        feed = {self.inputs[k]: v for k, v in features.items()}
        feed[self.seed] = seed
        return self.session.run(self.outputs, feed)


class OpRunners:
    """One ``OpRunner`` per key, made on first use; ``close()`` ends their sessions."""

    def __init__(self):
        self._runners = {}

    def get(self, key, op, shapes):
        if key not in self._runners:
            self._runners[key] = OpRunner(op, shapes)
        return self._runners[key]

    def close(self):
        for r in self._runners.values():
            r.session.close()
        self._runners.clear()
