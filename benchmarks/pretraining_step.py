"""One pretraining step, in-process: norbert's graph vs Google's, same batch, same session.

Whole-process timings (benchmarks/pretraining.py) of a few BERT-base steps on 2 CPU cores are
dominated by start-up and a 1.3 GB checkpoint write; this measures the steady state directly:
forward, backward and the AdamWeightDecay update of BERT (with both heads) on one fixed batch,
each graph in its own session, after two warm-up steps. The reference graph is Google's
bert.modeling + run_pretraining heads + optimization (bert-tensorflow 1.0.4, with the test-side
layer-norm stand-in); norbert's is heads.pretraining_forward + optimization.create_train_op, with
the session options ``norbert.training.loop`` uses (so ``--use_xla`` is measured as it runs).

It also says where a BERT-base step's time goes: the quietest of three traced steps of each
fp32 graph with ops run one at a time, split into matrix products and the rest; and the rate of
one BERT-base-sized product in float32 and bfloat16 on this machine. Together they bound what
any fp32 graph can gain here, and say whether bfloat16 can.
"""

import collections
import os
import sys
import time

import numpy as np

from common import QUICK, REPO, best_time, table

sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, REPO)

B, S, P = 8, 128, 20
REPEATS = 3  # measurements of each graph, interleaved; the best is kept (2-core VMs are noisy)
MODELS = [
    ("tiny (L=2, H=128)", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2,
                               intermediate_size=512), 40),
    ("BERT-base (L=12, H=768)", dict(num_hidden_layers=12, hidden_size=768,
                                     num_attention_heads=12, intermediate_size=3072), 5),
]
# (key, label, flags): norbert's variants; the optimizer and precision as the flags set them.
VARIANTS = [
    ("adamw_exact", "norbert, `--optimizer=adamw_exact`", dict(optimizer="adamw_exact")),
    ("adamw", "norbert, default (`--optimizer=adamw`, fp32)", dict()),
    ("xla", "norbert, `--use_xla`", dict(use_xla=True)),
    ("bf16", "norbert, `--precision=bf16`", dict(precision="bf16")),
    ("bf16_xla", "norbert, `--precision=bf16 --use_xla`", dict(precision="bf16", use_xla=True)),
]
VARIANTS_BY_KEY = {v[0]: v for v in VARIANTS}
# Op types that are matrix products, and their oneDNN forms (_MklMatMul, _MklNativeFusedMatMul
# with the bias added, _MklEinsum: the reference's dense layers are Einsums on TF 2.x).
MATMUL_OPS = ("MatMul", "Einsum")
TRACED_STEPS = 3  # the quietest is kept


def _feed():
    rng = np.random.RandomState(0)
    return dict(
        input_ids=rng.randint(5, 30000, [B, S]).astype(np.int32),
        input_mask=np.ones([B, S], np.int32),
        segment_ids=np.concatenate([np.zeros([B, S // 2]), np.ones([B, S // 2])],
                                   1).astype(np.int32),
        masked_lm_positions=np.sort(rng.randint(1, S, [B, P])).astype(np.int32),
        masked_lm_ids=rng.randint(5, 30000, [B, P]).astype(np.int32),
        masked_lm_weights=np.ones([B, P], np.float32),
        next_sentence_labels=rng.randint(0, 2, [B, 1]).astype(np.int32),
    )


def _build(which, config):
    """(graph, initializer, train op, loss, session options) of the "reference" graph or of a
    norbert variant (a ``VARIANTS`` key) on the one fixed batch of ``_feed``, as constants."""
    import tensorflow.compat.v1 as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(0)
        f = {k: tf.constant(v) for k, v in _feed().items()}
        if which == "reference":
            from bert import modeling, optimization, run_pretraining

            bc = modeling.BertConfig.from_dict(config)
            model = modeling.BertModel(config=bc, is_training=True, input_ids=f["input_ids"],
                                       input_mask=f["input_mask"], token_type_ids=f["segment_ids"])
            mlm = run_pretraining.get_masked_lm_output(
                bc, model.get_sequence_output(), model.get_embedding_table(),
                f["masked_lm_positions"], f["masked_lm_ids"], f["masked_lm_weights"])[0]
            nsp = run_pretraining.get_next_sentence_output(
                bc, model.get_pooled_output(), f["next_sentence_labels"])[0]
            loss = mlm + nsp
            op = optimization.create_optimizer(loss, 1e-4, 1000, 10, False)
            options = tf.ConfigProto()
        else:
            from norbert.model import heads
            from norbert.model.bert_config import BertConfig
            from norbert.model.precision_config import PrecisionConfig
            from norbert.training import loop
            from norbert.training.config import OptimizerConfig
            from norbert.training.optimization import create_train_op
            from norbert.training.spec import RunConfig

            flags = dict(VARIANTS_BY_KEY[which][2])
            dtype = PrecisionConfig(flags.pop("precision", "fp32")).compute_dtype
            run = RunConfig(output_dir="unused", use_xla=flags.pop("use_xla", False))
            loss = heads.pretraining_forward(BertConfig(**config), f, True,
                                             compute_dtype=dtype).total_loss
            op, _ = create_train_op(loss, OptimizerConfig(learning_rate=1e-4, num_train_steps=1000,
                                                          num_warmup_steps=10, **flags))
            options = loop.session_config(run)
        init = tf.global_variables_initializer()
    return graph, init, op, loss, options


def warm_session(which, config):
    """(session, [train op, loss]) of ``_build``'s graph on its fixed batch, after two warm-up
    steps; the caller closes the session."""
    import tensorflow.compat.v1 as tf

    graph, init, op, loss, options = _build(which, config)
    sess = tf.Session(graph=graph, config=options)
    sess.run(init)
    for _ in range(2):
        sess.run([op, loss])
    return sess, [op, loss]


def _seconds_per_step(which, config, steps):
    """Seconds per step, after two warm-up steps."""
    sess, fetches = warm_session(which, config)
    with sess:
        start = time.perf_counter()
        for _ in range(steps):
            sess.run(fetches)
        return (time.perf_counter() - start) / steps


def _time_split(which, config):
    """Op seconds of a traced step run one op at a time: {"products": s, "rest": s}, of the
    quietest of ``TRACED_STEPS``."""
    import tensorflow.compat.v1 as tf

    graph, init, op, loss, options = _build(which, config)
    # Ops one after another, so their times add up. TF sizes the shared inter-op pool at the
    # process's first session and ignores later sessions' counts: this one gets its own.
    options.inter_op_parallelism_threads = 1
    options.use_per_session_threads = True
    splits = []
    with tf.Session(graph=graph, config=options) as sess:
        sess.run(init)
        for _ in range(2):
            sess.run([op, loss])
        for _ in range(TRACED_STEPS):
            metadata = tf.RunMetadata()
            sess.run([op, loss], options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
                     run_metadata=metadata)
            split = collections.Counter(products=0.0, rest=0.0)
            for device in metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    # timeline_label reads "name = OpType(inputs)"
                    op_type = node.timeline_label.partition(" = ")[2].partition("(")[0]
                    kind = "products" if any(m in op_type for m in MATMUL_OPS) else "rest"
                    split[kind] += node.all_end_rel_micros / 1e6
            splits.append(split)
    return min(splits, key=lambda split: split["products"] + split["rest"])


def _gemm_rates():
    """GFLOP/s of a BERT-base feed-forward product ([1024, 768] x [768, 3072]) by dtype."""
    import tensorflow.compat.v1 as tf

    rates = {}
    for dtype in (tf.float32, tf.bfloat16):
        graph = tf.Graph()
        with graph.as_default():
            a = tf.Variable(tf.cast(tf.random.normal([1024, 768]), dtype))
            b = tf.Variable(tf.cast(tf.random.normal([768, 3072]), dtype))
            touch = tf.reduce_sum(tf.cast(tf.matmul(a, b)[0, 0], tf.float32))
            init = tf.global_variables_initializer()
        with tf.Session(graph=graph) as sess:
            sess.run(init)
            sess.run(touch)  # warm-up
            seconds = best_time(lambda: [sess.run(touch) for _ in range(10)])[0] / 10
        rates[dtype.name] = 2 * 1024 * 768 * 3072 / seconds / 1e9
    return rates


def split_table(name, config, labels, times):
    """Rows of the products/rest split of the reference's and norbert's default fp32 step."""
    rows = []
    for which in ("reference", "adamw"):
        split = _time_split(which, config)
        total = split["products"] + split["rest"]
        bound = ""
        if which == "adamw":
            # Every non-product op free: the most an fp32 graph could gain on this machine.
            bound = "%.2fx" % (times["reference"] / (split["products"] * times["adamw"] / total))
        rows.append((name, labels[which], "%.3f" % total, "%.3f" % split["products"],
                     "%.0f%%" % (100 * split["products"] / total), "%.3f" % split["rest"], bound))
    return rows


def main():
    import reference_shim

    from norbert.training import loop

    # TF reads its XLA flags once, at the first session: allow CPU clustering before any, as
    # run_pretraining does for --use_xla (sessions without a JIT level are unaffected).
    loop.enable_xla_on_cpu()
    reference_shim.install()
    from absl import flags

    from bert import run_pretraining  # noqa: F401 - defines the flags it reads

    flags.FLAGS.mark_as_parsed()
    base = dict(vocab_size=30522, hidden_act="gelu", hidden_dropout_prob=0.1,
                attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                initializer_range=0.02)
    rows = []
    models = MODELS[:1] if QUICK else MODELS
    for name, sizes, steps in models:
        config = dict(base, **sizes)
        times = {}
        for _ in range(1 if QUICK else REPEATS):  # interleaved, best kept
            for which in ["reference"] + [v[0] for v in VARIANTS]:
                print("  %s: %s" % (name, which), file=sys.stderr, flush=True)
                t = _seconds_per_step(which, config, steps)
                times[which] = min(times.get(which, t), t)
        ref = times["reference"]
        labels = [("reference", "Google's graph and AdamWeightDecay")]
        labels += [(key, label) for key, label, _ in VARIANTS]
        for which, label in labels:
            rows.append((name, label, "%.3f" % times[which], "%.1f" % (B / times[which]),
                         "%.2fx" % (ref / times[which])))
        if name == models[-1][0]:  # BERT-base: a tiny step is too short to trace fairly
            split_rows = split_table(name, config, dict(labels), times)
    rates = _gemm_rates()
    print("## Pretraining step (steady state, in-process)\n")
    print(
        "Forward, backward and AdamWeightDecay update of BERT with both heads on one fixed batch "
        "(batch %d, sequence %d, %d predictions), dropout on, each graph in its own session "
        "in one process; two warm-up steps, then the best of %d interleaved measurements of "
        "%d (tiny) or %d (BERT-base) steps. `adamw_exact` computes the update op by op as "
        "Google's code does; the default `adamw` runs it on TensorFlow's fused Adam kernel. "
        "norbert's sessions take `run_pretraining`'s options (for `--use_xla`: global JIT and "
        "TF's `--tf_xla_cpu_global_jit`). This is the steady-state cost the whole-process "
        "figures above hide under start-up and checkpoint writing. Command: "
        "`python benchmarks/run_all.py pretraining_step`.\n"
        % (B, S, P, REPEATS, MODELS[0][2], MODELS[1][2])
    )
    print(table(["model", "graph", "s/step", "examples/s", "vs reference"], rows))
    bf16_note = (": bfloat16 products are slower here, so `--precision=bf16` cannot pay on this "
                 "CPU (it is meant for TPUs and GPUs)." if rates["bfloat16"] < rates["float32"]
                 else ".")
    print(
        "\nWhere the time goes: the quietest of %d traced steps of each fp32 graph, ops run one "
        "at a time (inter-op threads 1); op seconds of matrix products (MatMul, BatchMatMul, "
        "Einsum and their oneDNN forms) and of everything else. The bound is the reference's "
        "s/step over norbert's product time (scaled to its untraced s/step): the speed-up an "
        "fp32 graph would reach if every other op cost nothing. One [1024, 768] x [768, 3072] "
        "product (a BERT-base feed-forward layer at batch 8) runs at %.0f GFLOP/s in float32 "
        "and %.0f GFLOP/s in bfloat16 on this machine%s\n"
        % (TRACED_STEPS, rates["float32"], rates["bfloat16"], bf16_note)
    )
    print(table(["model", "graph", "traced s", "products s", "products share", "rest s",
                 "fp32 bound vs reference"], split_rows))


if __name__ == "__main__":
    if any(a.startswith("--distribution") for a in sys.argv[1:]):
        # The data-parallel scaling of this step (total and per-replica examples/s, efficiency).
        import distributed_step

        sys.exit(distributed_step.main(sys.argv[1:]))
    sys.exit(main())
