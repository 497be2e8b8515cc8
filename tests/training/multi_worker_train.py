"""One worker of a multi-worker run through norbert's loop, for tests (run as a script), and
the input both that run and its one-device reference read.

``python multi_worker_train.py SETTINGS_JSON``, with TF_CONFIG set: trains the tiny BERT
of ``SETTINGS_JSON`` ("root", "output", "steps", "init", "optimizer", "accumulation") and
prints the result.
"""

import json
import os
import sys

GLOBAL_BATCH = 8
BUCKETS = tuple(range(4, 33, 4))  # fine steps: the halves of a batch often differ


def make_input_fn(root, records=None):
    """The records of ``records`` (default ``root``/train.tfrecord) in file order, in global
    batches of 8, each shortest first; a worker (``params["input_context"]``) gets its slice of
    each global batch, so two workers together see exactly the batches one device sees. Each
    batch (each worker's slice) is cut to its length bucket, so workers hold other lengths at
    a step and must agree on one."""
    import tensorflow.compat.v1 as tf

    from norbert.training import input_pipeline, length_buckets

    config = input_pipeline.InputConfig(
        input_files=[records or os.path.join(root, "train.tfrecord")], max_seq_length=32,
        max_predictions_per_seq=5, is_training=False)
    ordered = input_pipeline.make_input_fn(config)

    def shortest_first(f):
        order = tf.argsort(tf.reduce_sum(f["input_mask"], axis=1), stable=True)
        return {k: tf.gather(v, order) for k, v in f.items()}

    def input_fn(params):
        data = ordered(dict(params, batch_size=GLOBAL_BATCH, input_context=None))
        data = data.map(shortest_first)
        context = params.get("input_context")
        if context is not None and context.num_input_pipelines > 1:
            share = GLOBAL_BATCH // context.num_input_pipelines
            start = context.input_pipeline_id * share
            data = data.map(lambda f: {k: v[start:start + share] for k, v in f.items()})
        return data.map(lambda f: length_buckets.cut(f, BUCKETS))

    return input_pipeline.RecordInput(config, input_fn)


def make_model_fn(root, optimizer, accumulation):
    from norbert.model.bert_config import BertConfig
    from norbert.training.model_fn import ModelFnConfig, build_model_fn
    from norbert.training.config import OptimizerConfig

    config = BertConfig.from_json_file(os.path.join(root, "c.json"))
    return build_model_fn(ModelFnConfig(config, OptimizerConfig(
        learning_rate=1e-3, num_train_steps=10, num_warmup_steps=0, optimizer=optimizer,
        gradient_accumulation_steps=accumulation)))


def train(root, output, steps, init, optimizer="adamw_exact", accumulation=1,
          distribution=None, records=None):
    from norbert.training import loop
    from norbert.training.spec import RunConfig
    from norbert.training.start import find_start

    # Every worker finds the same start in the shared folder: the chief's newest checkpoint.
    return loop.train(make_model_fn(root, optimizer, accumulation), make_input_fn(root, records),
                      {},
                      RunConfig(output_dir=output, train_batch_size=GLOBAL_BATCH, seed=1,
                                log_every_steps=1), steps, distribution,
                      start=find_start(output, init))


if __name__ == "__main__":
    from norbert.training.distribution import DistributionConfig

    settings = json.loads(sys.argv[1])
    result = train(settings["root"], settings["output"], settings["steps"], settings["init"],
                   settings["optimizer"], settings["accumulation"],
                   DistributionConfig(distribution="multi_worker", worker_timeout_secs=120),
                   settings.get("records"))
    print("RESULT %s" % json.dumps(result.__dict__), flush=True)
