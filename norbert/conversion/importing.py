"""Hugging Face folder -> Google's layout: the I/O around ``hf_format``'s pure mapping.

Import writes what ``run_pretraining --init_checkpoint`` starts from: ``bert_config.json``,
``vocab.txt`` and a ``bert_model.ckpt`` checkpoint with Google's variable names. It reads
model.safetensors, sharded safetensors or pytorch_model.bin (the last needs torch).

It reads and checks every input (config, vocab, weights) before it touches the output, which
``norbert.conversion.output`` writes all at once; the checks against the config are the
export's (``norbert.conversion.export``).

TensorFlow is imported inside the functions that need it: the checks of a user's files come
first, and a bad flag is reported in a second rather than after TensorFlow's start-up.
"""

import dataclasses
import json
import os
from typing import ClassVar, Dict, List, Mapping, Optional, Tuple

import numpy as np

from norbert import fileio

from norbert.conversion import hf_format
from norbert.conversion.export import check_vocab_size, groups_present
from norbert.conversion.output import ConversionReport, join, staged, write
from norbert.errors import NorbertError
from norbert.settings import keyword_errors, one_config
from norbert.tokenization.options import TokenizerOptions
from norbert.tokenization.vocab import SPECIAL_TOKENS, parse_vocab

SAFETENSORS_INDEX = "model.safetensors.index.json"
CHECKPOINT_NAME = "bert_model.ckpt"


@dataclasses.dataclass(frozen=True)
class ImportConfig:
    """What ``import_from_hf`` converts, and where to."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Import"

    # A Hugging Face folder: config.json, model.safetensors (or pytorch_model.bin, or sharded
    # safetensors with model.safetensors.index.json) and vocab.txt.
    hf_dir: str
    # The folder to write bert_config.json, vocab.txt and the checkpoint into.
    output_dir: str
    # The checkpoint prefix's file name inside output_dir (Google's released models' name).
    checkpoint_name: str = CHECKPOINT_NAME

    def __post_init__(self):
        for flag in ("hf_dir", "output_dir"):
            if not getattr(self, flag):
                raise NorbertError("--%s is required" % flag)


@keyword_errors
def import_from_hf(config: Optional[ImportConfig] = None, **settings) -> ConversionReport:
    """Writes a transformers BERT folder as Google's layout; returns what it did.

    Takes an ``ImportConfig`` or its fields as keywords: ``import_from_hf(hf_dir=...,
    output_dir=...)``.
    """
    config = one_config("import_from_hf", config, settings, ImportConfig)
    fileio.check_writable_dir(config.output_dir, "--output_dir")
    hf_dir = config.hf_dir.rstrip("/") or "/"
    if not fileio.exists(hf_dir):
        raise NorbertError("--hf_dir=%s does not exist" % hf_dir)
    config_path = join(hf_dir, "config.json")
    if not fileio.exists(config_path):
        raise NorbertError(
            "--hf_dir=%s has no config.json: give the folder that save_pretrained wrote" % hf_dir
        )
    source = "config %s" % config_path
    try:
        values = json.loads(fileio.read_bytes(config_path, what="config").decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise NorbertError("%s is not valid JSON: %s" % (source, e)) from None
    bert_config = hf_format.bert_config_from_hf(values, source)

    vocab_path = join(hf_dir, "vocab.txt")
    if not fileio.exists(vocab_path):
        raise NorbertError(
            "--hf_dir=%s has no vocab.txt: training needs the model's WordPiece vocab; copy the "
            "model's vocab.txt into that folder" % hf_dir
        )
    vocab_bytes = fileio.read_bytes(vocab_path, what="vocab file")
    vocab = parse_vocab(vocab_bytes, source=vocab_path, required=SPECIAL_TOKENS)
    check_vocab_size(vocab, bert_config, vocab_path, config_path)

    weights, weights_source = read_hf_weights(hf_dir)
    tensors, left_other = from_hf_weights(weights, weights_source)
    present = groups_present(
        {name: value.shape for name, value in tensors.items()}, bert_config, weights_source,
        fix="check that config.json belongs to these weights",
    )
    table = [p for p in hf_format.parameter_table(bert_config) if p.group in present]
    left_other += sorted(n for n in tensors if n not in {p.name for p in table})
    architecture = hf_format.ARCHITECTURES[(hf_format.MASKED_LM in present,
                                            hf_format.NEXT_SENTENCE in present)]

    from norbert.model import checkpoints  # imports TensorFlow

    with staged(config.output_dir) as stage:
        write(stage, "vocab.txt", vocab_bytes)
        bert_config.to_json_file(os.path.join(stage, "bert_config.json"))
        checkpoints.save_checkpoint({p.name: tensors[p.name] for p in table},
                                    os.path.join(stage, config.checkpoint_name))
        files = sorted(os.listdir(stage))

    stated = _stated_tokenizer(hf_dir)
    return ConversionReport(
        source=weights_source,
        output_dir=config.output_dir,
        architecture=architecture,
        hidden_act=bert_config.hidden_act,
        converted=[p.name for p in table],
        files=files,
        left_out_state=[],
        left_out_other=sorted(left_other),
        missing_heads=[g for g in hf_format.GROUPS if g not in present],
        do_lower_case=stated[0],
        tokenizer_options=stated[1],
    )


def _stated_tokenizer(hf_dir: str) -> Tuple[Optional[bool], Optional[TokenizerOptions]]:
    """(do_lower_case, the options) from the folder's tokenizer_config.json, where it says."""
    path = join(hf_dir, "tokenizer_config.json")
    if not fileio.exists(path):
        return None, None
    try:
        values = json.loads(fileio.read_bytes(path).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None, None  # only informative: a bad file here must not stop the import
    if not isinstance(values, dict):
        return None, None
    return hf_format.stated_tokenizer(values)


def read_hf_weights(hf_dir: str) -> Tuple[Dict[str, np.ndarray], str]:
    """(key -> array, a description of the files) from model.safetensors, sharded safetensors
    or pytorch_model.bin, preferred in that order."""
    path = join(hf_dir, "model.safetensors")
    if fileio.exists(path):
        return read_safetensors(fileio.read_bytes(path, what="weights"), path), path
    index = join(hf_dir, SAFETENSORS_INDEX)
    if fileio.exists(index):
        try:
            shards = sorted(set(json.loads(fileio.read_bytes(index).decode("utf-8"))["weight_map"]
                                .values()))
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            raise NorbertError(
                "%s is not a valid safetensors index (no weight_map)" % index
            ) from None
        weights = {}
        for shard in shards:
            shard_path = join(hf_dir, shard)
            weights.update(read_safetensors(
                fileio.read_bytes(shard_path, what="weights shard"), shard_path))
        return weights, index
    path = join(hf_dir, "pytorch_model.bin")
    if fileio.exists(path):
        return _load_torch_state_dict(path), path
    raise NorbertError(
        "--hf_dir=%s has neither model.safetensors nor pytorch_model.bin: give the folder that "
        "save_pretrained wrote" % hf_dir
    )


# safetensors dtype -> numpy dtype (little-endian, as the format prescribes). BF16 has no numpy
# counterpart: ``read_safetensors`` widens it to float32.
_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U8": "u1", "BOOL": "?",
}


def read_safetensors(data: bytes, source: str) -> Dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file's bytes, parsed and checked by the safetensors
    package (``safetensors.deserialize``, the parser behind ``safetensors.numpy.load``).

    ``safetensors.numpy.load`` itself fails on bfloat16 weights (numpy has no bfloat16: a
    ``KeyError: 'BF16'``); here they arrive as float32, exactly (a bfloat16 is the top half of
    a float32). A bad file is a ``NorbertError`` naming ``source``.

    ``deserialize`` copies each tensor out of ``data``: reading a BERT-base file (420 MB)
    peaks at 883 MB of memory where views into ``data`` took 462 MB, but the import's peak is
    writing the checkpoint's, 1.79 GB either way, in the same time (``import_from_hf`` of a
    BERT-base folder, ``resource.getrusage`` max RSS, TF 2.15, safetensors 0.8).
    """
    from safetensors import SafetensorError, deserialize

    def bad(problem):
        return NorbertError("%s is not a valid safetensors file (%s); re-save the model with "
                            "save_pretrained" % (source, problem))

    try:
        entries = deserialize(data)
    except SafetensorError as e:  # "Error while deserializing: header too small", ...
        raise bad(e) from None
    tensors = {}
    for name, entry in entries:
        dtype, shape, raw = entry["dtype"], entry["shape"], entry["data"]
        if dtype == "BF16":
            # The 16 bits shifted into the high half of a float32's 32.
            array = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype in _SAFETENSORS_DTYPES:
            array = np.frombuffer(raw, _SAFETENSORS_DTYPES[dtype])
        else:
            raise bad("entry %r has dtype %s, which norbert cannot read" % (name, dtype))
        tensors[name] = array.reshape(shape)
    return tensors


def _load_torch_state_dict(path: str) -> Dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise NorbertError(
            "%s is a torch file and reading it needs torch (pip install torch); or re-save the "
            "model as model.safetensors (save_pretrained does by default)" % path
        ) from None
    with fileio.open_binary(path) as f:
        try:
            state = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several types for a bad file
            raise NorbertError("cannot read %s as a torch state_dict: %s" % (path, e)) from None
    if not isinstance(state, Mapping):
        raise NorbertError("%s holds no state_dict (a dict of tensors)" % path)
    # bfloat16 has no numpy counterpart: widen every float tensor to float32 first.
    return {k: (v.float() if v.is_floating_point() else v).numpy()
            for k, v in state.items() if hasattr(v, "numpy")}


def from_hf_weights(
    weights: Mapping[str, np.ndarray], source: str
) -> Tuple[Dict[str, np.ndarray], List[str]]:
    """(Google name -> float32 value in TF layout, keys left out) for transformers' weights.

    The tied decoder copies are checked against what they copy: an untied decoder would be a
    model norbert's heads cannot express, and dropping it silently would change the model.
    """
    tensors, origin, left_out = {}, {}, []
    for key, value in weights.items():
        name = hf_format.hf_to_tf_name(key)
        if name is None:
            if key not in hf_format.HF_TIED:  # tied copies are checked below
                left_out.append(key)
            continue
        if name in tensors:
            raise NorbertError(
                "%s holds %s twice (as %s and %s): keep one of them"
                % (source, name, origin[name], key)
            )
        value = np.asarray(value, dtype=np.float32)
        tensors[name] = value.T if hf_format.is_transposed(name) else value
        origin[name] = key
    for key, target in hf_format.HF_TIED.items():
        if key not in weights:
            continue
        copy = np.asarray(weights[key], dtype=np.float32)
        if target not in tensors:
            tensors[target] = copy  # e.g. a decoder bias saved without cls.predictions.bias
            origin[target] = key
        elif copy.shape != tensors[target].shape or not np.array_equal(copy, tensors[target]):
            raise NorbertError(
                "%s: %s differs from %s, but BERT ties them (norbert's masked-LM head uses the "
                "word embeddings as output weights); this model cannot be imported as it is"
                % (source, key, origin[target])
            )
    return tensors, left_out
