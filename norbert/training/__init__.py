"""Pretraining: the contract shared by both engines (spec), the optimizer, the model_fn, the
input pipeline, norbert's own loop and the TPU path, and the run_pretraining entry."""
