"""norbert: pretrain BERT from scratch, or continue pretraining Google's BERT, on new text."""

import re

from setuptools import find_packages, setup

with open("norbert/__init__.py", encoding="utf-8") as f:
    version = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)

setup(
    name="norbert",
    version=version,
    description="Pretrain BERT, or continue pretraining Google's BERT checkpoints, on new text",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["norbert", "norbert.*"]),
    python_requires=">=3.7",
    install_requires=[
        # TF 1.15 (Python 3.7, legacy TPU images), 2.15 (the last with tf.estimator and so
        # TPUEstimator) or any newer 2.x for CPU/GPU through norbert's own loop.
        "tensorflow>=1.15",
        "numpy",
        "absl-py",
        # Progress bars for the long-running data tools (build_vocab).
        "tqdm",
        # The upb backend (>=4.21) serialises records several times faster than the pure-Python
        # one. Asking for it here also stops pip from choosing the google-api-core (1.34) that
        # cloud-tpu-client would otherwise drag in with protobuf<4.
        "protobuf>=4.21; python_version>='3.8'",
        # The crc32c checksums of TFRecord framing: the data builder writes records without
        # importing TensorFlow, and a pure-Python crc32c would cost more than the whole run.
        "google-crc32c",
        # model.safetensors of the Hugging Face export, written from numpy: no torch needed.
        "safetensors",
    ],
    extras_require={
        # Resolving a TPU by name. Cloud TPU VM images already have it; GPU/CPU users need not.
        "tpu": ["cloud-tpu-client>=0.10"],
        # Parquet input (.parquet files) for create_pretraining_data.
        "parquet": ["pyarrow"],
        # The Apache Beam builder (--runner), which reads Parquet input too.
        "beam": ["apache-beam>=2.60", "pyarrow"],
        # Oracles the tests compare against.
        "test": [
            "bert-tensorflow==1.0.4",
            "tokenizers>=0.15",
            # transformers 5 (on torch) loads the exported folders and checks the numbers.
            "torch",
            "transformers>=5",
            "hypothesis",
            "pytest",
            # Run examples/quickstart.ipynb as a user would, in a Jupyter kernel.
            "nbclient",
            "nbformat",
            "ipykernel",
        ],
    },
    entry_points={
        # The same tools as scripts/*.py, on the PATH after pip install.
        "console_scripts": [
            "norbert-build-vocab = norbert.commands.build_vocab:run",
            "norbert-create-pretraining-data = norbert.commands.create_pretraining_data:run",
            "norbert-run-pretraining = norbert.commands.run_pretraining:run",
            "norbert-convert-to-pytorch = norbert.commands.convert_to_pytorch:run",
            "norbert-import-hf = norbert.commands.import_hf:run",
            "norbert-extend-vocab = norbert.commands.extend_vocab:run",
            "norbert-vocab-report = norbert.commands.vocab_report:run",
            "norbert-evaluate-downstream = norbert.commands.evaluate_downstream:run",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
