"""Downstream evaluation: fine-tune copies of a checkpoint on a labelled task and report its
scores (evaluate), one run per seed (finetune, the only TensorFlow graph code here), beside a
training run (watch). The task's files (conllu, tasks), the scores (metrics), the settings
(config) and the files written (results). Needs model/ and training/ (the optimizer)."""
