"""TF checkpoint -> Hugging Face folder: the I/O around ``hf_format``'s pure mapping.

Export writes a folder that transformers 5 loads with no extra arguments (``config.json``,
``model.safetensors``, ``vocab.txt``, ``tokenizer_config.json``, ``special_tokens_map.json``),
with numpy and safetensors only: exporting never needs torch (``--format=pytorch_bin`` does).
When the checkpoint's folder records the objective that trained it (``run_pretraining`` writes
``training_objective.json`` there), a model card ``README.md`` says which heads were trained.

It reads and checks every input (checkpoint, config, vocab) before it touches the output, which
``norbert.conversion.output`` writes all at once. The two checks of a model's files against its
config, ``groups_present`` and ``check_vocab_size``, serve the import as well.

TensorFlow is imported inside the functions that need it: the checks of a user's files come
first, and a bad flag is reported in a second rather than after TensorFlow's start-up.
"""

import dataclasses
import os
import warnings
from typing import ClassVar, Dict, List, Mapping, Optional, Tuple

import numpy as np

from norbert import fileio

from norbert.conversion import hf_format
from norbert.conversion.output import ConversionReport, join, staged, write
from norbert.model.bert_config import BertConfig
from norbert.errors import NorbertError
from norbert.settings import keyword_errors, make_configs
from norbert.tokenization.options import TokenizerOptions
from norbert.tokenization.vocab import (PAD, SPECIAL_TOKENS, parse_vocab,
                                        warn_on_casing_mismatch)

FORMATS = ("safetensors", "pytorch_bin")
WEIGHT_FILES = {"safetensors": "model.safetensors", "pytorch_bin": "pytorch_model.bin"}
CARD_FILE = "README.md"
# Settings the export requires though their config has a default: a model's casing is stated,
# never guessed (convert_to_pytorch's --do_lower_case is a required flag).
EXPORT_REQUIRES = ("do_lower_case",)


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What ``export_to_hf`` converts, and where to."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Export"

    # A checkpoint prefix (model.ckpt-1000) or a folder, whose latest checkpoint is taken.
    checkpoint: str
    # The bert_config.json the checkpoint was trained with.
    bert_config_file: str
    # The vocab.txt of the model; copied into the folder for the tokenizer.
    vocab_file: str
    # The Hugging Face folder to write (created if needed; files already there are replaced).
    output_dir: str
    # "safetensors" (model.safetensors, no torch needed) or "pytorch_bin" (pytorch_model.bin,
    # a bare state_dict as the old conversion script wrote; needs torch).
    format: str = dataclasses.field(default="safetensors", metadata={"choices": FORMATS})

    def __post_init__(self):
        if self.format not in FORMATS:
            raise NorbertError("--format=%s: use one of %s" % (self.format, ", ".join(FORMATS)))
        for flag in ("checkpoint", "bert_config_file", "vocab_file", "output_dir"):
            if not getattr(self, flag):
                raise NorbertError("--%s is required" % flag)


@keyword_errors
def export_to_hf(config: Optional[ExportConfig] = None,
                 tokenizer_options: Optional[TokenizerOptions] = None,
                 **settings) -> ConversionReport:
    """Writes ``config.checkpoint`` as a transformers BERT folder; returns what it did.

    Takes an ``ExportConfig`` and the ``TokenizerOptions`` the data was built with, for the
    exported tokenizer (``do_lower_case`` required), or their fields as keywords:
    ``export_to_hf(checkpoint=..., bert_config_file=..., vocab_file=..., do_lower_case=True,
    output_dir=...)``.
    """
    config, options = make_configs(
        "export_to_hf", {"config": config, "tokenizer_options": tokenizer_options}, settings,
        [ExportConfig, TokenizerOptions], required=EXPORT_REQUIRES)
    fileio.check_writable_dir(config.output_dir, "--output_dir")
    if config.format == "pytorch_bin":
        _torch_for_writing()  # before the work, not after it
    bert_config = BertConfig.from_json_file(config.bert_config_file, flag="--bert_config_file")
    vocab_bytes = fileio.read_bytes(config.vocab_file, what="vocab file")
    vocab = parse_vocab(vocab_bytes, source=config.vocab_file, required=SPECIAL_TOKENS)
    check_vocab_size(vocab, bert_config, config.vocab_file, "--bert_config_file")
    warn_on_casing_mismatch(vocab, options.do_lower_case, config.vocab_file,
                            options.strip_accents)
    options.check_vocab(vocab, config.vocab_file)

    from norbert.model import checkpoints  # imports TensorFlow

    checkpoint = checkpoints.resolve(config.checkpoint, flag="--checkpoint")
    tensors, present, left_state, left_other = read_parameters(checkpoint, bert_config)
    architecture = hf_format.ARCHITECTURES[(hf_format.MASKED_LM in present,
                                            hf_format.NEXT_SENTENCE in present)]
    weights = {}
    for param in hf_format.parameter_table(bert_config):
        if param.group in present:
            value = tensors[param.name]
            weights[hf_format.tf_to_hf_name(param.name)] = np.ascontiguousarray(
                value.T if hf_format.is_transposed(param.name) else value
            )

    hf_config = hf_format.hf_config(bert_config, architecture, pad_token_id=vocab[PAD])
    card, card_note = model_card(config.output_dir, checkpoint, present)
    weight_file = WEIGHT_FILES[config.format]
    with staged(config.output_dir) as stage:
        if config.format == "safetensors":
            from safetensors.numpy import save_file

            # transformers refuses safetensors files whose metadata lacks the format.
            save_file(weights, os.path.join(stage, weight_file), metadata={"format": "pt"})
        else:
            _save_torch_state_dict(weights, os.path.join(stage, weight_file))
        write(stage, "vocab.txt", vocab_bytes)
        write(stage, "tokenizer_config.json", hf_format.json_bytes(
            hf_format.tokenizer_config(options.do_lower_case, bert_config.max_position_embeddings,
                                       options, vocab)
        ))
        write(stage, "special_tokens_map.json",
              hf_format.json_bytes(hf_format.special_tokens_map()))
        write(stage, "config.json", hf_format.json_bytes(hf_config))
        files = [weight_file, "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
                 "config.json"]
        if card is not None:
            write(stage, CARD_FILE, card)
            files.append(CARD_FILE)

    return ConversionReport(
        source=checkpoint,
        output_dir=config.output_dir,
        architecture=architecture,
        hidden_act=hf_config["hidden_act"],
        converted=[p.name for p in hf_format.parameter_table(bert_config) if p.group in present],
        files=files,
        left_out_state=left_state,
        left_out_other=left_other,
        missing_heads=[g for g in hf_format.GROUPS if g not in present],
        card=card_note,
    )


def model_card(output_dir: str, checkpoint: str,
               present: List[str]) -> Tuple[Optional[bytes], str]:
    """(README.md's bytes or None, the line saying so): the card names the objective that the
    record beside ``checkpoint`` states (``norbert.model.objective_record``); none without a
    record, nor over a README.md in ``output_dir`` that an export did not write."""
    from norbert.model import objective_record

    objectives = objective_record.read(os.path.dirname(checkpoint) or ".")
    if objectives is None:
        return None, ("no model card: %s has no %s beside it to say which objective trained "
                      "it" % (checkpoint, objective_record.FILE_NAME))
    existing = join(output_dir, CARD_FILE)
    if fileio.exists(existing) and hf_format.CARD_MARK.encode("utf-8") not in \
            fileio.read_bytes(existing, what="model card"):
        return None, "no model card: %s is not one an export wrote; kept as it is" % existing
    card = hf_format.model_card(objectives, os.path.basename(checkpoint), present)
    return card.encode("utf-8"), "%s says the objective: %s" % (CARD_FILE, " then ".join(
        objectives))


def read_parameters(
    checkpoint: str, config: BertConfig
) -> Tuple[Dict[str, np.ndarray], List[str], List[str], List[str]]:
    """(Google name -> float32 value, groups present, run-state names, other names left out).

    Every encoder variable must be there with the config's shape; a head is taken whole or,
    when none of its variables is there, not at all. The shapes are checked from the index
    before any tensor is read.
    """
    from norbert.model.checkpoints import (checkpoint_shapes, is_run_state,  # imports TensorFlow
                                           read_checkpoint)

    stored = checkpoint_shapes(checkpoint)
    present = groups_present(
        stored, config, "checkpoint %s" % checkpoint,
        fix="check that --bert_config_file is the checkpoint's own bert_config.json",
    )
    wanted = {p.name for p in hf_format.parameter_table(config) if p.group in present}
    values = read_checkpoint(checkpoint, sorted(wanted),
                             fix="copy it again, or export an earlier one")
    tensors = {name: np.asarray(value, dtype=np.float32) for name, value in values.items()}
    others = sorted(n for n in stored if n not in wanted)
    return (tensors, present, [n for n in others if is_run_state(n)],
            [n for n in others if not is_run_state(n)])


def _torch_for_writing():
    try:
        import torch
    except ImportError:
        raise NorbertError(
            "--format=pytorch_bin needs torch (pip install torch), or use --format=safetensors, "
            "which transformers loads as well and needs no torch"
        ) from None
    return torch


def _save_torch_state_dict(weights: Mapping[str, np.ndarray], path: str) -> None:
    torch = _torch_for_writing()
    torch.save({k: torch.from_numpy(np.array(v)) for k, v in weights.items()}, path)


# ---- checks of a model's files against its config, the import's as well -----------------


def groups_present(
    shapes: Mapping[str, Tuple[int, ...]], config: BertConfig, where: str, fix: str
) -> List[str]:
    """The parameter groups found whole in ``shapes`` (Google names -> TF shapes).

    ``NorbertError`` when an encoder parameter is missing, a head is there only in part, or a
    shape differs from the config's.
    """
    table = hf_format.parameter_table(config)
    present = []
    for group in hf_format.GROUPS:
        params = [p for p in table if p.group == group]
        found = [p for p in params if p.name in shapes]
        if not found and group != hf_format.BERT:
            continue
        if len(found) < len(params):
            lacking = next(p.name for p in params if p.name not in shapes)
            raise NorbertError(
                "%s lacks %s (%d of the %d %s parameters for this config are there); %s"
                % (where, lacking, len(found), len(params), group, fix)
            )
        for p in params:
            if tuple(shapes[p.name]) != p.shape:
                raise NorbertError(
                    "%s: %s has shape %s but the config needs %s; %s"
                    % (where, p.name, list(shapes[p.name]), list(p.shape), fix)
                )
        present.append(group)
    return present


def check_vocab_size(vocab, config: BertConfig, vocab_source: str, config_source: str) -> None:
    """More tokens than embedding rows is an error: ids the model cannot look up. Fewer is a
    warning: right only for a model that padded its table to a round number (30522 -> 30528),
    and otherwise the sign of another model's vocab."""
    if len(vocab) > config.vocab_size:
        raise NorbertError(
            "vocab file %s has %d tokens but the model's vocab_size is %d (%s): use the model's "
            "own vocab.txt" % (vocab_source, len(vocab), config.vocab_size, config_source)
        )
    if len(vocab) < config.vocab_size:
        warnings.warn(
            "vocab file %s has %d tokens but the model's vocab_size is %d (%s): right only if "
            "the model padded its embedding table; otherwise use the model's own vocab.txt"
            % (vocab_source, len(vocab), config.vocab_size, config_source), VocabSizeWarning,
            stacklevel=4)  # the caller of export_to_hf/import_from_hf (above keyword_errors)


class VocabSizeWarning(UserWarning):
    """The vocab has fewer tokens than the model's embedding table."""
