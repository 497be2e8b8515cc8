"""Checkpoints to and from Hugging Face transformers folders: the pure name and shape mapping
(hf_format) and the file I/O (export, importing, and the output folder and report both write:
output). Needs model/, never training/."""
