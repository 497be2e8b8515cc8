"""One pretraining step, in-process: norbert's graph vs Google's, same batch, same session.

Whole-process timings (benchmarks/pretraining.py) of a few BERT-base steps on 2 CPU cores are
dominated by start-up and a 1.3 GB checkpoint write; this measures the steady state directly:
forward, backward and the AdamWeightDecay update of BERT (with both heads) on one fixed batch,
each graph in its own session, after two warm-up steps. The reference graph is Google's
bert.modeling + run_pretraining heads + optimization (bert-tensorflow 1.0.4, with the test-side
layer-norm stand-in); norbert's is heads.pretraining_forward + optimization.create_train_op.
"""

import os
import sys
import time

import numpy as np

from common import REPO, table

sys.path.insert(0, os.path.join(REPO, "tests"))

B, S, P = 8, 128, 20
REPEATS = 3  # measurements of each graph, interleaved; the best is kept (2-core VMs are noisy)
MODELS = [
    ("tiny (L=2, H=128)", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2,
                               intermediate_size=512), 40),
    ("BERT-base (L=12, H=768)", dict(num_hidden_layers=12, hidden_size=768,
                                     num_attention_heads=12, intermediate_size=3072), 5),
]


def _feed():
    rng = np.random.RandomState(0)
    return dict(
        input_ids=rng.randint(5, 30000, [B, S]).astype(np.int32),
        input_mask=np.ones([B, S], np.int32),
        segment_ids=np.concatenate([np.zeros([B, S // 2]), np.ones([B, S // 2])], 1).astype(np.int32),
        masked_lm_positions=np.sort(rng.randint(1, S, [B, P])).astype(np.int32),
        masked_lm_ids=rng.randint(5, 30000, [B, P]).astype(np.int32),
        masked_lm_weights=np.ones([B, P], np.float32),
        next_sentence_labels=rng.randint(0, 2, [B, 1]).astype(np.int32),
    )


def _seconds_per_step(which, config, steps):
    """Seconds per step of the "reference" graph, or of norbert's with that ``--optimizer``."""
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
        else:
            from norbert import heads
            from norbert.config import BertConfig
            from norbert.optimization import OptimizerConfig, create_train_op

            loss = heads.pretraining_forward(BertConfig(**config), f, True).total_loss
            op, _ = create_train_op(loss, OptimizerConfig(learning_rate=1e-4, num_train_steps=1000,
                                                          num_warmup_steps=10, optimizer=which))
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(2):
                sess.run([op, loss])
            start = time.perf_counter()
            for _ in range(steps):
                sess.run([op, loss])
            return (time.perf_counter() - start) / steps


def main():
    import reference_shim

    reference_shim.install()
    from absl import flags

    from bert import run_pretraining  # noqa: F401 - defines the flags it reads

    flags.FLAGS.mark_as_parsed()
    base = dict(vocab_size=30522, hidden_act="gelu", hidden_dropout_prob=0.1,
                attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                initializer_range=0.02)
    rows = []
    for name, sizes, steps in MODELS:
        config = dict(base, **sizes)
        times = {}
        for _ in range(REPEATS):  # interleaved, best kept
            for which in ("reference", "adamw_exact", "adamw"):
                t = _seconds_per_step(which, config, steps)
                times[which] = min(times.get(which, t), t)
        ref = times["reference"]
        for which, label in (("reference", "Google's graph and AdamWeightDecay"),
                             ("adamw_exact", "norbert, `--optimizer=adamw_exact`"),
                             ("adamw", "norbert, `--optimizer=adamw` (default)")):
            rows.append((name, label, "%.3f" % times[which], "%.1f" % (B / times[which]),
                         "%.2fx" % (ref / times[which])))
    print("## Pretraining step (steady state, in-process)\n")
    print(
        "Forward, backward and AdamWeightDecay update of BERT with both heads on one fixed batch "
        "(batch %d, sequence %d, %d predictions), fp32, dropout on, each graph in its own session "
        "in one process; two warm-up steps, then the best of %d interleaved measurements of "
        "%d (tiny) or %d (BERT-base) steps. `adamw_exact` computes the update op by op as "
        "Google's code does; the default `adamw` runs it on TensorFlow's fused Adam kernel. "
        "This is the steady-state cost the whole-process "
        "figures above hide under start-up and checkpoint writing. Command: "
        "`python benchmarks/run_all.py pretraining_step`.\n"
        % (B, S, P, REPEATS, MODELS[0][2], MODELS[1][2])
    )
    print(table(["model", "graph", "s/step", "examples/s", "vs reference"], rows))


if __name__ == "__main__":
    sys.exit(main())
