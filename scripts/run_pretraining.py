"""Pretrain BERT, or continue pretraining a Google checkpoint: Google's flags, and more
(held-out evaluation, resuming, mixing sources, mixed precision, distribution, TPUs).

    python scripts/run_pretraining.py --input_file=data/train.tfrecord \\
        --output_dir=out --do_train --do_eval --bert_config_file=bert_config.json \\
        --init_checkpoint=multi_cased_L-12_H-768_A-12/bert_model.ckpt \\
        --train_batch_size=32 --max_seq_length=128 --max_predictions_per_seq=20 \\
        --num_train_steps=20000 --num_warmup_steps=10 --learning_rate=2e-5

On CPU/GPU it runs norbert's own loop; with --use_tpu, Google's TPUEstimator (TF 2.15 or 1.15).
The same as the ``norbert-run-pretraining`` command.
"""

from norbert.commands import run_pretraining

if __name__ == "__main__":
    run_pretraining.run()
