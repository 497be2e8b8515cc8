"""TF checkpoint ⇄ Hugging Face folder: the I/O around ``norbert.conversion.hf_format``'s pure mapping.

Export writes a folder that transformers 5 loads with no extra arguments (``config.json``,
``model.safetensors``, ``vocab.txt``, ``tokenizer_config.json``, ``special_tokens_map.json``),
with numpy and safetensors only: exporting never needs torch. Import writes Google's layout
(``bert_config.json``, ``vocab.txt``, a ``bert_model.ckpt`` checkpoint with Google's variable
names) that ``run_pretraining --init_checkpoint`` starts from.

Both read and check every input (checkpoint, config, vocab, the Hugging Face folder) before
they touch the output; then they create the output folder and any missing ones above it
(``mkdir -p``), write every file into a staging folder beside it and move them into place only
when all of them exist. A failure leaves the output folder as it was, and removes the folders
it created.

TensorFlow is imported inside the functions that need it: the checks of a user's files come
first, and a bad flag is reported in a second rather than after TensorFlow's start-up.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from norbert import fileio

from norbert.conversion import hf_format
from norbert.model.bert_config import BertConfig
from norbert.errors import NorbertError
from norbert.settings import one_config
from norbert.tokenization.vocab import PAD, parse_vocab, warn_on_casing_mismatch

FORMATS = ("safetensors", "pytorch_bin")
WEIGHT_FILES = {"safetensors": "model.safetensors", "pytorch_bin": "pytorch_model.bin"}
SAFETENSORS_INDEX = "model.safetensors.index.json"
CHECKPOINT_NAME = "bert_model.ckpt"
# Moved into the output folder after all others (see _staged).
_WRITTEN_LAST = ("config.json", "checkpoint")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What ``export_to_hf`` converts, and where to."""

    # A checkpoint prefix (model.ckpt-1000) or a folder, whose latest checkpoint is taken.
    checkpoint: str
    # The bert_config.json the checkpoint was trained with.
    bert_config_file: str
    # The vocab.txt of the model; copied into the folder for the tokenizer.
    vocab_file: str
    # The model's casing, written to tokenizer_config.json (must match the vocab's training).
    do_lower_case: bool
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


@dataclasses.dataclass(frozen=True)
class ImportConfig:
    """What ``import_from_hf`` converts, and where to."""

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


@dataclasses.dataclass
class ConversionReport:
    """What a conversion took, wrote and left out."""

    source: str  # the checkpoint or folder read
    output_dir: str
    architecture: str  # transformers class of the parameters converted
    hidden_act: str  # the activation, as written to the output's config
    converted: List[str]  # Google names of the parameters written
    files: List[str]  # file names written into output_dir
    left_out_state: List[str]  # optimizer slots, accumulators, step: not part of the model
    left_out_other: List[str]  # other entries nothing maps to (task heads, buffers, tied copies)
    missing_heads: List[str]  # parts on top of the encoder that the source lacks (pooler,
    # masked_lm, next_sentence): left for training to initialise
    # Import only: the casing in the folder's tokenizer_config.json (None: not stated). Google's
    # layout has no place for it, and training data must be tokenised the same way.
    do_lower_case: Optional[bool] = None

    def summary(self) -> str:
        lines = [
            "converted %d parameters (%s, hidden_act %s) from %s to %s: %s"
            % (len(self.converted), self.architecture, self.hidden_act, self.source,
               self.output_dir, ", ".join(self.files))
        ]
        if self.missing_heads:
            lines.append(
                "  not in the source, left for training to initialise: "
                + ", ".join(self.missing_heads)
            )
        if self.left_out_state:
            lines.append(
                "  left out, optimizer state and step (%d): %s"
                % (len(self.left_out_state), _brief(self.left_out_state))
            )
        if self.left_out_other:
            lines.append(
                "  left out, not parameters of BERT or its pretraining heads (%d): %s"
                % (len(self.left_out_other), _brief(self.left_out_other))
            )
        if self.do_lower_case is not None:
            lines.append(
                "  the tokenizer lower-cases: %s (build data with --do_lower_case=%s)"
                % (self.do_lower_case, str(self.do_lower_case).lower())
            )
        return "\n".join(lines)


def _brief(names: List[str], limit: int = 8) -> str:
    """The names, or for a long list their last parts counted: '78 x .../adam_m, global_step'.

    A checkpoint's optimizer holds a slot or two per variable: hundreds of names that say
    nothing one by one.
    """
    if len(names) <= limit:
        return ", ".join(names)
    leaves: Dict[str, List[str]] = {}
    for name in names:
        leaves.setdefault(name.rsplit("/", 1)[-1], []).append(name)
    return ", ".join("%d x .../%s" % (len(group), leaf) if len(group) > 1 else group[0]
                     for leaf, group in sorted(leaves.items()))


# ---- export -----------------------------------------------------------------------------


def export_to_hf(config: Optional[ExportConfig] = None, **settings) -> ConversionReport:
    """Writes ``config.checkpoint`` as a transformers BERT folder; returns what it did.

    Takes an ``ExportConfig`` or its fields as keywords: ``export_to_hf(checkpoint=...,
    bert_config_file=..., vocab_file=..., do_lower_case=True, output_dir=...)``.
    """
    config = one_config("export_to_hf", config, settings, ExportConfig)
    fileio.check_writable_dir(config.output_dir, "--output_dir")
    if config.format == "pytorch_bin":
        _torch_for_writing()  # before the work, not after it
    bert_config = BertConfig.from_json_file(config.bert_config_file)
    vocab_bytes = fileio.read_bytes(config.vocab_file, what="vocab file")
    vocab = parse_vocab(vocab_bytes, source=config.vocab_file)
    _check_vocab_size(vocab, bert_config, config.vocab_file, "--bert_config_file")
    warn_on_casing_mismatch(vocab, config.do_lower_case, config.vocab_file)

    from norbert.model import checkpoints  # imports TensorFlow

    checkpoint = checkpoints.resolve(config.checkpoint, flag="--checkpoint")
    tensors, present, left_state, left_other = read_checkpoint(checkpoint, bert_config)
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
    weight_file = WEIGHT_FILES[config.format]
    with _staged(config.output_dir) as stage:
        if config.format == "safetensors":
            from safetensors.numpy import save_file

            # transformers refuses safetensors files whose metadata lacks the format.
            save_file(weights, os.path.join(stage, weight_file), metadata={"format": "pt"})
        else:
            _save_torch_state_dict(weights, os.path.join(stage, weight_file))
        _write(stage, "vocab.txt", vocab_bytes)
        _write(stage, "tokenizer_config.json", hf_format.json_bytes(
            hf_format.tokenizer_config(config.do_lower_case, bert_config.max_position_embeddings)
        ))
        _write(stage, "special_tokens_map.json",
               hf_format.json_bytes(hf_format.special_tokens_map()))
        _write(stage, "config.json", hf_format.json_bytes(hf_config))
        files = [weight_file, "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
                 "config.json"]

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
    )


def read_checkpoint(
    checkpoint: str, config: BertConfig
) -> Tuple[Dict[str, np.ndarray], List[str], List[str], List[str]]:
    """(Google name -> float32 value, groups present, run-state names, other names left out).

    Every encoder variable must be there with the config's shape; a head is taken whole or,
    when none of its variables is there, not at all.
    """
    import tensorflow.compat.v1 as tf

    from norbert.model.checkpoints import is_run_state, tf_message

    try:
        reader = tf.train.load_checkpoint(checkpoint)
        stored = reader.get_variable_to_shape_map()
    except tf.errors.OpError as e:
        raise NorbertError("checkpoint %s is unreadable (%s): copy it again"
                           % (checkpoint, tf_message(e))) from None
    where = "checkpoint %s" % checkpoint
    present = _groups_present(
        {name: tuple(shape) for name, shape in stored.items()}, config, where,
        fix="check that --bert_config_file is the checkpoint's own bert_config.json",
    )
    wanted = {p.name for p in hf_format.parameter_table(config) if p.group in present}
    try:
        tensors = {name: np.asarray(reader.get_tensor(name), dtype=np.float32) for name in wanted}
    except tf.errors.OpError as e:  # flipped bytes fail a checksum only when read
        raise NorbertError("checkpoint %s is damaged (%s): copy it again, or export an earlier "
                           "one" % (checkpoint, tf_message(e))) from None
    others = sorted(n for n in stored if n not in wanted)
    return (tensors, present, [n for n in others if is_run_state(n)],
            [n for n in others if not is_run_state(n)])


def _groups_present(
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


def _check_vocab_size(vocab, config: BertConfig, vocab_source: str, config_source: str) -> None:
    # More tokens than embedding rows would give ids the model cannot look up. Fewer is fine:
    # some models pad their table to a round number.
    if len(vocab) > config.vocab_size:
        raise NorbertError(
            "vocab file %s has %d tokens but the model's vocab_size is %d (%s): use the model's "
            "own vocab.txt" % (vocab_source, len(vocab), config.vocab_size, config_source)
        )


# ---- import -----------------------------------------------------------------------------


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
    config_path = _join(hf_dir, "config.json")
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

    vocab_path = _join(hf_dir, "vocab.txt")
    if not fileio.exists(vocab_path):
        raise NorbertError(
            "--hf_dir=%s has no vocab.txt: training needs the model's WordPiece vocab; copy the "
            "model's vocab.txt into that folder" % hf_dir
        )
    vocab_bytes = fileio.read_bytes(vocab_path, what="vocab file")
    vocab = parse_vocab(vocab_bytes, source=vocab_path)
    _check_vocab_size(vocab, bert_config, vocab_path, config_path)

    weights, weights_source = read_hf_weights(hf_dir)
    tensors, left_other = from_hf_weights(weights, weights_source)
    present = _groups_present(
        {name: value.shape for name, value in tensors.items()}, bert_config, weights_source,
        fix="check that config.json belongs to these weights",
    )
    table = [p for p in hf_format.parameter_table(bert_config) if p.group in present]
    left_other += sorted(n for n in tensors if n not in {p.name for p in table})
    architecture = hf_format.ARCHITECTURES[(hf_format.MASKED_LM in present,
                                            hf_format.NEXT_SENTENCE in present)]

    with _staged(config.output_dir) as stage:
        _write(stage, "vocab.txt", vocab_bytes)
        bert_config.to_json_file(os.path.join(stage, "bert_config.json"))
        save_checkpoint({p.name: tensors[p.name] for p in table},
                        os.path.join(stage, config.checkpoint_name))
        files = sorted(os.listdir(stage))

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
        do_lower_case=_stated_casing(hf_dir),
    )


def _stated_casing(hf_dir: str) -> Optional[bool]:
    """``do_lower_case`` from the folder's tokenizer_config.json, if it says."""
    path = _join(hf_dir, "tokenizer_config.json")
    if not fileio.exists(path):
        return None
    try:
        value = json.loads(fileio.read_bytes(path).decode("utf-8")).get("do_lower_case")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None  # only informative: a bad file here must not stop the import
    return value if isinstance(value, bool) else None


def read_hf_weights(hf_dir: str) -> Tuple[Dict[str, np.ndarray], str]:
    """(key -> array, a description of the files) from model.safetensors, sharded safetensors
    or pytorch_model.bin, preferred in that order."""
    path = _join(hf_dir, "model.safetensors")
    if fileio.exists(path):
        data = fileio.read_bytes(path, what="weights")
        return hf_format.parse_safetensors(data, path), path
    index = _join(hf_dir, SAFETENSORS_INDEX)
    if fileio.exists(index):
        try:
            shards = sorted(set(json.loads(fileio.read_bytes(index).decode("utf-8"))["weight_map"]
                                .values()))
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            raise NorbertError("%s is not a valid safetensors index (no weight_map)" % index) from None
        weights = {}
        for shard in shards:
            shard_path = _join(hf_dir, shard)
            weights.update(hf_format.parse_safetensors(
                fileio.read_bytes(shard_path, what="weights shard"), shard_path))
        return weights, index
    path = _join(hf_dir, "pytorch_model.bin")
    if fileio.exists(path):
        return _load_torch_state_dict(path), path
    raise NorbertError(
        "--hf_dir=%s has neither model.safetensors nor pytorch_model.bin: give the folder that "
        "save_pretrained wrote" % hf_dir
    )


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


def save_checkpoint(values: Mapping[str, np.ndarray], prefix: str) -> str:
    """A TF checkpoint at ``prefix`` holding ``values`` under their names, readable by
    ``tf.train.init_from_checkpoint`` and Google's code. Values are fed through placeholders so
    that a large model does not become constants inside the graph (GraphDef's 2 GB limit)."""
    import tensorflow.compat.v1 as tf

    with tf.Graph().as_default():
        variables, assigns, feed = [], [], {}
        for name, value in values.items():
            var = tf.get_variable(name, shape=value.shape, dtype=tf.float32,
                                  initializer=tf.zeros_initializer())
            placeholder = tf.placeholder(tf.float32, shape=value.shape)
            assigns.append(tf.assign(var, placeholder))
            feed[placeholder] = value
            variables.append(var)
        # Relative paths in the "checkpoint" state file: the folder stays valid when moved.
        saver = tf.train.Saver(variables, save_relative_paths=True)
        with tf.Session() as sess:
            sess.run(assigns, feed_dict=feed)
            return saver.save(sess, prefix, write_meta_graph=False)


# ---- writing a folder all at once -------------------------------------------------------


def _join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name if fileio.is_remote(folder) else os.path.join(folder, name)


def _write(stage: str, name: str, data: bytes) -> None:
    with open(os.path.join(stage, name), "wb") as f:
        f.write(data)


@contextlib.contextmanager
def _staged(output_dir: str) -> Iterator[str]:
    """A local folder to write into; when the block succeeds, its files move into
    ``output_dir`` one by one (atomically each, in the order written).

    ``output_dir`` and the folders above it are created first when missing (``mkdir -p``),
    which the callers do only once every input has been read and checked. When the block fails,
    ``output_dir`` is left as it was: the folders this created are removed again."""
    created = fileio.make_folders(output_dir)
    try:
        # Beside the output, so that the final moves are renames on one filesystem (a bucket:
        # the local temporary folder).
        where = None if fileio.is_remote(output_dir) else os.path.dirname(
            os.path.abspath(output_dir))
        stage = tempfile.mkdtemp(prefix=".norbert-convert-", dir=where)
    except BaseException:
        fileio.remove_folders(created)
        raise
    try:
        yield stage
        # The files that make a folder count as a model go last: a reader that finds them finds
        # everything else already in place.
        names = sorted(os.listdir(stage), key=lambda n: (n in _WRITTEN_LAST, n))
        _publish(stage, names, output_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        fileio.remove_folders(created)  # only those still empty: a partial publish stays
        raise
    shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: str, names: List[str], output_dir: str) -> None:
    if fileio.is_remote(output_dir):
        import tensorflow as tf

        tf.io.gfile.makedirs(output_dir)
        for name in names:
            target = _join(output_dir, name)
            tmp = "%s.tmp-%d" % (target, os.getpid())
            tf.io.gfile.copy(os.path.join(stage, name), tmp, overwrite=True)
            tf.io.gfile.rename(tmp, target, overwrite=True)
        return
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise NorbertError("cannot create --output_dir=%s: %s" % (output_dir, e)) from None
    for name in names:
        source, target = os.path.join(stage, name), os.path.join(output_dir, name)
        try:
            os.replace(source, target)
        except OSError:  # another filesystem: copy beside the target, then rename
            with fileio.atomic_output(target, "wb") as out, open(source, "rb") as f:
                shutil.copyfileobj(f, out)
