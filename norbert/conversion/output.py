"""What a conversion leaves behind: its output folder, written all at once, and its report.

Export and import both read and check every input before they touch the output. Then
``staged`` creates the output folder and any missing ones above it (``mkdir -p``) and hands out
a staging folder beside it; every file is written there, and moved into place only when all of
them exist. A failure leaves the output folder as it was, and removes the folders it created.

``ConversionReport`` is what either direction returns: what it took, wrote and left out.
"""

import contextlib
import dataclasses
import os
import shutil
import tempfile
from typing import Dict, Iterator, List, Optional

from norbert import fileio

from norbert.errors import NorbertError
from norbert.tokenization.options import TokenizerOptions

# Moved into the output folder after all others (see staged).
_WRITTEN_LAST = ("config.json", "checkpoint")


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
    # Import only: the Hugging Face tokenizer options stated there (None: no tokenizer_config).
    tokenizer_options: Optional[TokenizerOptions] = None
    # Export only: whether a model card (README.md) was written and what it says, or why not.
    card: str = ""

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
        if self.card:
            lines.append("  " + self.card)
        if self.do_lower_case is not None:
            options = self.tokenizer_options.flags() if self.tokenizer_options else ""
            lines.append(
                "  the tokenizer lower-cases: %s (build data with --do_lower_case=%s%s)"
                % (self.do_lower_case, str(self.do_lower_case).lower(),
                   " " + options if options else "")
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


# ---- writing a folder all at once -------------------------------------------------------


def join(folder: str, name: str) -> str:
    """``folder``/``name``; a bucket's path keeps its forward slashes."""
    if fileio.is_remote(folder):
        return folder.rstrip("/") + "/" + name
    return os.path.join(folder, name)


def write(stage: str, name: str, data: bytes) -> None:
    """``data`` as the file ``name`` in the local staging folder ``stage``."""
    with open(os.path.join(stage, name), "wb") as f:
        f.write(data)


@contextlib.contextmanager
def staged(output_dir: str) -> Iterator[str]:
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
            target = join(output_dir, name)
            tmp = fileio.temporary_name(target)
            tf.io.gfile.copy(os.path.join(stage, name), tmp, overwrite=True)
            tf.io.gfile.rename(tmp, target, overwrite=True)
        return
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise NorbertError("cannot create --output_dir=%s: %s" % (output_dir, e)) from None
    umask = os.umask(0)
    os.umask(umask)
    for name in names:
        source, target = os.path.join(stage, name), os.path.join(output_dir, name)
        # The permissions of any file the user writes (a writer may have made it private,
        # as safetensors does): a model shared on a cluster must be readable.
        os.chmod(source, 0o666 & ~umask)
        try:
            os.replace(source, target)
        except OSError:  # another filesystem: copy beside the target, then rename
            with fileio.atomic_output(target, "wb") as out, open(source, "rb") as f:
                shutil.copyfileobj(f, out)
