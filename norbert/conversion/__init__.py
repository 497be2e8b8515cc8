"""Checkpoints to and from Hugging Face transformers folders: the pure name and shape mapping
(hf_format) and the file I/O (convert). Needs model/, never training/."""
