"""Our schedule and AdamWeightDecay give Google's numbers; LAMB and accumulation do the maths."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

from norbert.training.config import OptimizerConfig  # noqa: E402
from norbert.training.optimization import create_train_op  # noqa: E402

RNG = np.random.RandomState(0)
X = RNG.randn(4, 3).astype(np.float32)
INIT = {
    "layer/dense/kernel": RNG.randn(3, 2).astype(np.float32),
    "layer/dense/bias": RNG.randn(2).astype(np.float32),
    "layer/LayerNorm/gamma": RNG.randn(2).astype(np.float32),
    "zero/kernel": np.zeros([2, 2], np.float32),  # LAMB's trust ratio must not divide by zero
}


def _model(x):
    """A small graph with a weight-decayed kernel and excluded bias/LayerNorm variables."""
    v = {
        name: tf.get_variable(name, initializer=value, use_resource=True)
        for name, value in INIT.items()
    }
    h = (tf.matmul(x, v["layer/dense/kernel"]) + v["layer/dense/bias"]) * v["layer/LayerNorm/gamma"]
    h = h + tf.matmul(h, v["zero/kernel"])
    return tf.reduce_mean(tf.square(h - 1.0)), v


def _train(build_op, steps, feeds=None):
    """Runs ``steps`` updates from INIT and returns the variables, global step and rates."""
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None, 3])
        loss, variables = _model(x)
        op, rate = build_op(loss)
        rates = []
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for i in range(steps):
                feed = {x: X if feeds is None else feeds[i]}
                if rate is not None:
                    rates.append(sess.run(rate))
                sess.run(op, feed)
            values = sess.run(variables)
            step = sess.run(tf.train.get_global_step())
    return values, step, rates


def _config(**kw):
    base = dict(learning_rate=0.1, num_train_steps=6, num_warmup_steps=2)
    base.update(kw)
    return OptimizerConfig(**base)


def test_schedule_is_warmup_then_linear_decay():
    config = _config(learning_rate=1.0, num_train_steps=10, num_warmup_steps=4)
    with tf.Graph().as_default():
        step = tf.placeholder(tf.int64, [])
        from norbert.training.optimization import learning_rate_schedule

        rate = learning_rate_schedule(step, config)
        with tf.Session() as sess:
            got = [sess.run(rate, {step: s}) for s in range(13)]
    expected = [s / 4 if s < 4 else 1 - min(s, 10) / 10 for s in range(13)]
    np.testing.assert_allclose(got, expected, atol=1e-7)


def _read_global_step_before_its_assign(graph):
    """Google's train op groups ``global_step.assign(global_step + 1)`` with the update, with
    nothing ordering it after the learning rate's reads of the step: on a resource variable some
    runs take the rate of the next step. Order those reads first (the intended rule, and what
    norbert does) so the oracle is deterministic."""
    step = tf.train.get_global_step(graph)
    ops = graph.get_operations()
    (assign,) = [op for op in ops if op.type == "AssignVariableOp"
                 and op.inputs[0] is step.handle and op is not step.initializer]
    # The reads before the increment (not the one that returns the assigned value).
    reads = [op for op in ops if op.type == "ReadVariableOp" and op.inputs[0] is step.handle
             and assign not in op.control_inputs]
    assert len(reads) >= 2  # the schedule reads the step for warm-up and for decay
    for read in reads:
        assign._add_control_input(read)  # no public API orders ops of a built graph


# adamw_exact computes Google's rule op by op: the same numbers to float rounding. adamw runs
# the fused kernel, which adds (1 - beta_2) computed in float32 into v: 6e-6 relatively larger
# steps, so over six steps of rate 0.1 the weights agree to a few parts in 1e5.
@pytest.mark.parametrize("optimizer,rtol", [("adamw_exact", 1e-6), ("adamw", 5e-5)])
def test_adam_weight_decay_matches_google(reference_tokenization, optimizer, rtol):
    from bert import optimization as reference

    steps = 6

    def google(loss):
        op = reference.create_optimizer(loss, 0.1, steps, 2, use_tpu=False)
        _read_global_step_before_its_assign(tf.get_default_graph())
        return op, None

    def ours(loss):
        return create_train_op(loss, _config(num_train_steps=steps, optimizer=optimizer))

    expected, expected_step, _ = _train(google, steps)
    got, step, _ = _train(ours, steps)
    assert step == expected_step == steps
    for name in INIT:
        np.testing.assert_allclose(got[name], expected[name], rtol=rtol, atol=rtol / 10,
                                   err_msg=name)
        assert not np.allclose(got[name], INIT[name]) or name == "zero/kernel"


@pytest.mark.parametrize("use_resource", [True, False])
def test_fused_adam_equals_the_op_by_op_rule(use_resource):
    """Also on ref variables, the kind TF 1.15 graphs make."""
    values = {}
    for optimizer in ("adamw", "adamw_exact"):
        with tf.Graph().as_default():
            v = {name: tf.get_variable(name, initializer=value, use_resource=use_resource)
                 for name, value in INIT.items()}
            h = tf.matmul(X, v["layer/dense/kernel"]) + v["layer/dense/bias"]
            h = (h * v["layer/LayerNorm/gamma"]) @ (v["zero/kernel"] + 1.0)
            op, _ = create_train_op(tf.reduce_mean(tf.square(h - 1.0)),
                                    _config(optimizer=optimizer, learning_rate=1e-3))
            with tf.Session() as sess:
                sess.run(tf.global_variables_initializer())
                for _ in range(4):
                    sess.run(op)
                slots = [x for x in tf.global_variables() if x.name.endswith(("adam_m:0",
                                                                              "adam_v:0"))]
                values[optimizer] = sess.run({x.name: x for x in list(v.values()) + slots})
    assert len(values["adamw"]) == len(INIT) * 3
    for name, value in values["adamw_exact"].items():
        assert not np.array_equal(value, INIT.get(name[:-2], 0 * value))
        np.testing.assert_allclose(values["adamw"][name], value, rtol=5e-5, atol=1e-7,
                                   err_msg=name)


def test_fused_weight_decay_waits_for_the_gradient():
    """The fused step decays the variable in place before the Adam kernel. Unless the decay
    waits for the gradient, nothing orders it after the forward pass's read of the variable:
    a decay scheduled first changed the step's own loss (measured: two replicas against one
    device differed by up to 1.2e-5, and one device against itself by 6.4e-6; 3.7e-7 after)."""
    with tf.Graph().as_default() as graph:
        loss, _ = _model(tf.constant(X))
        create_train_op(loss, _config(optimizer="adamw"))
        decays = [op for op in graph.get_operations() if op.type == "AssignSubVariableOp"
                  and op.inputs[0].op.name.endswith("kernel")]
        # The forward pass's products, which read the kernels.
        forward = [op for op in graph.get_operations()
                   if op.type == "MatMul" and not op.name.startswith("gradients")]
        assert len(forward) == 2
        assert len(decays) == 2  # layer/dense/kernel and zero/kernel; bias and gamma excluded
        for op in decays:
            seen, todo = set(), [op]
            while todo:  # every op this one waits for, by data or control
                current = todo.pop()
                for before in [t.op for t in current.inputs] + list(current.control_inputs):
                    if before not in seen:
                        seen.add(before)
                        todo.append(before)
            assert set(forward) <= seen, op.name


def test_slot_names_say_which_optimizer_wrote_them():
    for optimizer, slot in [("adamw", "adam_m"), ("adamw_exact", "adam_m"), ("lamb", "lamb_m")]:
        with tf.Graph().as_default():
            loss, _ = _model(tf.constant(X))
            create_train_op(loss, _config(optimizer=optimizer))
            names = {v.op.name for v in tf.global_variables()}
        assert "layer/dense/kernel/%s" % slot in names
        assert "layer/dense/kernel/%s" % slot.replace("_m", "_v") in names


def _numpy_lamb(steps, lr_at, c):
    """LAMB (You et al. 2019, Algorithm 2) in numpy, with global-norm clipping first."""
    import tensorflow as tf2

    w = {k: v.copy() for k, v in INIT.items()}
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v2 = {k: np.zeros_like(v) for k, v in w.items()}
    for t in range(1, steps + 1):
        with tf2.GradientTape() as tape:
            tv = {k: tf2.Variable(val) for k, val in w.items()}
            h = (tf2.matmul(X, tv["layer/dense/kernel"]) + tv["layer/dense/bias"]) * tv[
                "layer/LayerNorm/gamma"
            ]
            h = h + tf2.matmul(h, tv["zero/kernel"])
            loss = tf2.reduce_mean(tf2.square(h - 1.0))
        grads = dict(zip(tv, [g.numpy() for g in tape.gradient(loss, list(tv.values()))]))
        norm = np.sqrt(sum(np.sum(g * g) for g in grads.values()))
        scale = c.clip_norm / max(norm, c.clip_norm)
        for k in w:
            g = grads[k] * scale
            m[k] = c.beta_1 * m[k] + (1 - c.beta_1) * g
            v2[k] = c.beta_2 * v2[k] + (1 - c.beta_2) * g * g
            update = (m[k] / (1 - c.beta_1**t)) / (np.sqrt(v2[k] / (1 - c.beta_2**t)) + c.epsilon)
            ratio = 1.0
            if not any(p in k for p in c.exclude_from_weight_decay):
                update = update + c.weight_decay_rate * w[k]
                wn, un = np.linalg.norm(w[k]), np.linalg.norm(update)
                ratio = wn / un if wn > 0 and un > 0 else 1.0
            w[k] = w[k] - lr_at[t - 1] * ratio * update
    return w


def test_lamb_follows_the_paper():
    steps = 5
    config = _config(optimizer="lamb", num_train_steps=steps)
    got, step, rates = _train(lambda loss: create_train_op(loss, config), steps)
    assert step == steps
    expected = _numpy_lamb(steps, rates, config)
    for name in INIT:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("optimizer", ["adamw", "adamw_exact", "lamb"])
def test_accumulation_equals_one_step_on_the_whole_batch(optimizer):
    whole, _, _ = _train(
        lambda loss: create_train_op(loss, _config(optimizer=optimizer)), 1
    )
    halves = [X[:2], X[2:]]
    accumulated, step, _ = _train(
        lambda loss: create_train_op(
            loss, _config(optimizer=optimizer, gradient_accumulation_steps=2)
        ),
        2,
        feeds=halves,
    )
    assert step == 1  # global_step counts updates, not micro-batches
    for name in INIT:
        np.testing.assert_allclose(accumulated[name], whole[name], rtol=1e-5, atol=1e-6)
    # After one micro-batch nothing has moved yet.
    first, step, _ = _train(
        lambda loss: create_train_op(
            loss, _config(optimizer=optimizer, gradient_accumulation_steps=2)
        ),
        1,
        feeds=halves,
    )
    assert step == 0
    for name in INIT:
        np.testing.assert_array_equal(first[name], INIT[name])


def test_static_loss_scale_changes_nothing_in_float32():
    plain, _, _ = _train(lambda loss: create_train_op(loss, _config()), 3)
    scaled, _, _ = _train(lambda loss: create_train_op(loss, _config(), loss_scale=128.0), 3)
    for name in INIT:
        np.testing.assert_allclose(scaled[name], plain[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("accumulation", [1, 3])
def test_batches_trained_counts_every_micro_batch_before_the_step(accumulation):
    from norbert.training.optimization import batches_trained

    config = _config(gradient_accumulation_steps=accumulation)
    with tf.Graph().as_default():
        x = tf.constant(X)
        loss, _ = _model(x)
        # Read in the forward pass, as the dropout key is: the value before this step's update.
        before = batches_trained(config)
        op, _ = create_train_op(loss * tf.cast(before + 1, tf.float32), config)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            seen = [int(sess.run([before, op])[0]) for _ in range(7)]
            step = int(sess.run(tf.train.get_global_step()))
    assert seen == list(range(7))
    assert step == 7 // accumulation
