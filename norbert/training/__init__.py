"""Pretraining: the run plan and the engines it is handed to (pretraining, engines), where a
run starts from (start) and how it stops (stop), the contract shared by both engines (spec), the
optimizer, the model_fn, the record checks and the run's inputs, the tf.data input pipeline,
norbert's own loop, tf.distribute, the TPU path, and the run lock."""
