"""Fine-tune copies of a BERT checkpoint on a labelled task (UD tagging, entities, sentiment)
and report the task's scores as mean and spread over seeds; or follow a training run with --watch.

    python scripts/evaluate_downstream.py --train_file=ud/train.conllu \\
        --eval_file=ud/dev.conllu --checkpoint=run --bert_config_file=bert_config.json \\
        --vocab_file=vocab.txt --do_lower_case=false --output_dir=eval_ud

Without --checkpoint the same architecture starts from random weights (a baseline).
``--watch=RUN_FOLDER`` evaluates each checkpoint of a run_pretraining folder once, as it
appears. The same as the ``norbert-evaluate-downstream`` command
(``norbert/commands/evaluate_downstream.py``); the work is done in ``norbert/downstream/``.
"""

from norbert.commands import evaluate_downstream

if __name__ == "__main__":
    evaluate_downstream.run()
