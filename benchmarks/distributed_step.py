"""Data-parallel pretraining steps through tf.distribute: what the replicas cost and gain.

Builds norbert's training step (the loop's own graph: model_fn once per replica, the gradient
all-reduce, the optimizer) on a fixed batch and times it after two warm-up steps.

* Without arguments (as ``run_all.py`` runs it, on a machine without GPUs): the cost of the
  machinery. One device against ``mirrored`` with 1 and with 2 logical CPU replicas, the same
  global batch each time, so the work is the same and the difference is the overhead of the
  replicas (graph build, step); the CPU's cores are shared, so there is no speed-up to find.
* ``--distribution=mirrored --num_gpus=N`` (or ``--num_cpu_replicas=N``) on a multi-GPU
  machine: the scaling. One replica against N, the batch per replica fixed
  (``--per_replica_batch``), reporting total and per-replica examples/s and the scaling
  efficiency, examples/s of N replicas over N times those of one.
"""

import argparse
import sys
import time

import numpy as np

from common import QUICK, REPO, table

sys.path.insert(0, REPO)

S, P = 128, 20
MODELS = {
    "tiny": ("tiny (L=2, H=128)", dict(num_hidden_layers=2, hidden_size=128,
                                       num_attention_heads=2, intermediate_size=512), 20),
    "base": ("BERT-base (L=12, H=768)", dict(num_hidden_layers=12, hidden_size=768,
                                             num_attention_heads=12, intermediate_size=3072), 3),
}
BASE = dict(vocab_size=30522, hidden_act="gelu", hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
            initializer_range=0.02)


def _input_fn(params):
    """One fixed batch of ``params["batch_size"]`` examples, repeated."""
    import tensorflow.compat.v1 as tf

    b = params["batch_size"]
    rng = np.random.RandomState(0)
    features = dict(
        input_ids=rng.randint(5, 30000, [b, S]).astype(np.int32),
        input_mask=np.ones([b, S], np.int32),
        segment_ids=np.concatenate([np.zeros([b, S // 2]), np.ones([b, S // 2])],
                                   1).astype(np.int32),
        masked_lm_positions=np.sort(rng.randint(1, S, [b, P])).astype(np.int32),
        masked_lm_ids=rng.randint(5, 30000, [b, P]).astype(np.int32),
        masked_lm_weights=np.ones([b, P], np.float32),
        next_sentence_labels=rng.randint(0, 2, [b, 1]).astype(np.int32),
    )
    return tf.data.Dataset.from_tensors(features).repeat()


def measure(sizes, distribution, global_batch, steps):
    """(graph build s, s/step) of norbert's step for ``distribution`` at ``global_batch``."""
    import tensorflow.compat.v1 as tf

    from norbert.model.bert_config import BertConfig
    from norbert.training import loop
    from norbert.training.distribution import make_strategy
    from norbert.training.model_fn import ModelFnConfig, build_model_fn
    from norbert.training.config import OptimizerConfig
    from norbert.training.spec import RunConfig
    from norbert.training.start import Start

    model_fn = build_model_fn(ModelFnConfig(BertConfig(**dict(BASE, **sizes)), OptimizerConfig(
        learning_rate=1e-4, num_train_steps=1000, num_warmup_steps=10)))
    run = RunConfig(output_dir="unused", train_batch_size=global_batch)
    graph = tf.Graph()
    start = time.perf_counter()
    with graph.as_default():
        tf.set_random_seed(0)
        strategy = make_strategy(distribution)
        if strategy is None:
            step = loop._one_device_step(model_fn, _input_fn, {}, run, Start())
        else:
            step = loop._replicated_step(model_fn, _input_fn, {}, run, strategy, Start())
        init = [tf.global_variables_initializer()] + step.initializers
    built = time.perf_counter() - start
    with tf.Session(graph=graph, config=loop.session_config(run, distribution)) as sess:
        sess.run(init)
        for _ in range(2):
            sess.run([step.train_op, step.loss])
        start = time.perf_counter()
        for _ in range(steps):
            sess.run([step.train_op, step.loss])
        return built, (time.perf_counter() - start) / steps


def overhead(models, global_batch):
    """The machinery's cost on this machine: one device, 1 and 2 logical CPU replicas."""
    from norbert.training.distribution import DistributionConfig

    variants = [("one device", DistributionConfig()),
                ("`mirrored`, 1 CPU replica",
                 DistributionConfig(distribution="mirrored", num_cpu_replicas=1)),
                ("`mirrored`, 2 CPU replicas",
                 DistributionConfig(distribution="mirrored", num_cpu_replicas=2))]
    rows = []
    for key in models:
        name, sizes, steps = MODELS[key]
        times = {}
        for _ in range(1 if QUICK else 2):  # interleaved, the best kept
            for label, distribution in variants:
                print("  %s: %s" % (name, label), file=sys.stderr, flush=True)
                t = measure(sizes, distribution, global_batch, steps)
                old = times.get(label, (float("inf"), float("inf")))
                times[label] = (min(old[0], t[0]), min(old[1], t[1]))
        base_build, base_step = times["one device"]
        for label, _ in variants:
            built, step = times[label]
            rows.append((name, label, "%.1f" % built, "%.2fx" % (built / base_build),
                         "%.3f" % step, "%.2fx" % (step / base_step)))
    print("## Distributed training: the cost of the machinery (2 logical CPU replicas)\n")
    print(
        "norbert's training step (model_fn once per replica, the gradient all-reduce, adamw) "
        "built and run in one process: on one device, and through `--distribution=mirrored` "
        "with 1 and 2 logical CPU replicas (`--num_cpu_replicas`), the same global batch of %d "
        "(sequence %d, %d predictions) each time, so the work is the same: the ratios are the "
        "overhead of the replicas, not a speed-up (the replicas share this machine's cores). "
        "Best of %d interleaved measurements of %s steps after two warm-up steps. On a machine "
        "with GPUs, `python benchmarks/pretraining_step.py --distribution=mirrored --num_gpus=N` "
        "reports the scaling instead. Command: `python benchmarks/run_all.py "
        "distributed_step`.\n"
        % (global_batch, S, P, 1 if QUICK else 2,
           " / ".join("%d (%s)" % (MODELS[k][2], k) for k in models)))
    print(table(["model", "run", "graph build s", "build vs one device", "s/step",
                 "step vs one device"], rows))


def scaling(args):
    """Weak scaling on this machine's devices: 1 replica against N, the batch per replica
    fixed."""
    from norbert.training.distribution import DistributionConfig, local_devices

    many = DistributionConfig(distribution=args.distribution, num_gpus=args.num_gpus,
                              num_cpu_replicas=args.num_cpu_replicas)
    n = len(local_devices(many))
    one = DistributionConfig(distribution=args.distribution,
                             num_gpus=1 if not args.num_cpu_replicas else 0,
                             num_cpu_replicas=1 if args.num_cpu_replicas else 0)
    rows = []
    for key in args.model:
        name, sizes, steps = MODELS[key]
        steps = args.steps or steps
        results = {}
        for replicas, distribution in ((1, one), (n, many)):
            built, step = measure(sizes, distribution, args.per_replica_batch * replicas, steps)
            results[replicas] = args.per_replica_batch * replicas / step
            rows.append((name, replicas, "%.1f" % built, "%.3f" % step,
                         "%.1f" % results[replicas], "%.1f" % (results[replicas] / replicas)))
        rows[-1] += ("%.0f%%" % (100 * results[n] / (n * results[1])),)
        rows[-2] += ("",)
    print(table(["model", "replicas", "graph build s", "s/step", "examples/s",
                 "examples/s per replica", "scaling efficiency"], rows))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--distribution", default=None, choices=["mirrored"])
    parser.add_argument("--num_gpus", type=int, default=0)
    parser.add_argument("--num_cpu_replicas", type=int, default=0)
    parser.add_argument("--per_replica_batch", type=int, default=8)
    parser.add_argument("--global_batch", type=int, default=16)
    parser.add_argument("--model", action="append", choices=sorted(MODELS))
    parser.add_argument("--steps", type=int, default=0)
    args = parser.parse_args(argv)
    args.model = args.model or (["tiny"] if QUICK else ["tiny", "base"])
    if args.distribution is None:
        overhead(args.model, args.global_batch)
    else:
        scaling(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
