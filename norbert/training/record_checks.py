"""Record files checked before a run: which files, how many records, their shapes, damage.

The records' shapes are checked before any graph is built: against the sidecar that the data
builder writes beside each file (``<file>.meta.json``), or, for records from another builder,
against the first record itself. A ``max_seq_length`` or ``max_predictions_per_seq`` that does
not match the data is then a clear error naming the file and flag, not a parse failure deep
inside TensorFlow minutes into a run.

Damaged files are looked for too. TensorFlow reads a file cut short as if it ended there, and
silently trains on less, so each file's end is checked before the run (a cheap look at its last
bytes, not a read of the whole). A record with flipped bytes fails its checksum only when read,
as a ``DataLossError`` without the file's name; ``find_damage`` then finds the file and the
record (``input_pipeline.RecordInput.describe_data_loss``).

Named groups of files (``--input_file=nb=data/nb-*,en=data/en-*``) are sized here for mixing:
from the sidecars' counts, or from a walk over the records' headers. Every read of the framing
is ``norbert.data.tfrecord.scan``; no TensorFlow here.
"""

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from norbert import fileio
from norbert.data import sidecar, tfrecord
from norbert.data.features import DYNAMIC, MLM_NSP, STATIC
from norbert.errors import NorbertError
from norbert.training.dynamic_masking import DynamicMasking
from norbert.training.dynamic_pairing import DynamicPairing
from norbert.training.mixing import parse_groups

Sidecars = Mapping[str, Optional[dict]]  # record file -> its sidecar (None: it has none)


def record_files(spec: str, flag: str = "--input_file") -> List[str]:
    """The record files named by a comma-separated list of files or globs.

    Sidecars (``.json``) that a glob such as ``data/*`` also matches are left out.
    """
    files = [p for p in fileio.expand_inputs(spec, flag) if not p.endswith(".json")]
    if not files:
        raise NorbertError("%s=%s matches only .json files, no records" % (flag, spec))
    return files


def record_groups(spec: str, flag: str = "--input_file") -> Optional[List[Tuple[str, List[str]]]]:
    """[(name, record files)] of named groups ``name=glob,...``; None for plain globs.

    Raises ``NorbertError`` naming ``flag`` and the group for one that matches no records, and
    for a file in two groups (it would be drawn under both shares).
    """
    named = parse_groups(spec, flag)
    if named is None:
        return None
    out = []
    owner = {}  # type: Dict[str, str]
    for name, pattern in named:
        files = [p for p in fileio.expand_inputs(pattern, "%s group %s" % (flag, name))
                 if not p.endswith(".json")]
        if not files:
            raise NorbertError("%s: group %s (%s) matches only .json files, no records"
                               % (flag, name, pattern))
        for path in files:
            if path in owner:
                raise NorbertError("%s: %s is in groups %s and %s: give each file one group"
                                   % (flag, path, owner[path], name))
            owner[path] = name
        out.append((name, files))
    return out


# -- damage ---------------------------------------------------------------------------------

Problem = Tuple[int, int, str]  # (record number from 1, its byte offset, what is wrong)

# How each kind of damage reads in a check's message.
_WHAT = {
    tfrecord.HEADER_CUT: "is cut short (the file is truncated)",
    tfrecord.DATA_CUT: "is cut short (the file is truncated)",
    tfrecord.LENGTH_CORRUPT: "is corrupt (its length fails its checksum)",
    tfrecord.DATA_CORRUPT: "is corrupt (its data fail their checksum)",
}


def problem_of(damage: tfrecord.Damage) -> Problem:
    """``tfrecord.scan``'s damage as the checks name it: (number, offset, what is wrong)."""
    return damage.number, damage.offset, _WHAT[damage.kind]


def find_damage(path: str, offset: Optional[int] = None) -> Optional[Problem]:
    """(record number from 1, its byte offset, what is wrong) of the first damaged record of
    ``path``, or None when there is none.

    Reads the framing without TensorFlow: each header's length checksum, and each record's
    data checksum. With ``offset`` (a position TensorFlow named: "corrupted record at N", the
    start of the record or of its data), only the record there has its data read, and the walk
    stops there: the headers before it are enough to count the records.
    """
    read_data = True if offset is None else tfrecord.names_frame(offset)
    with fileio.open_binary(path) as f:
        for item in tfrecord.scan(f, fileio.size(path), read_data):
            if isinstance(item, tfrecord.Damage):
                return problem_of(item)
            if offset is not None and item.end > offset:
                return None  # the record at offset (or past it) is whole
    return None


def describe_damage(path: str, problem: Problem) -> str:
    """``"<path> is damaged: record N (at byte B) is ..."`` for ``find_damage``'s answer."""
    number, pos, what = problem
    if number == 1 and "length" in what:
        return "%s is not a TFRecord file (its first record's length fails its checksum)" % path
    return "%s is damaged: record %d (at byte %d) %s" % (path, number, pos, what)


def damage_message(flag: str, path: str, problem: Problem) -> str:
    described = describe_damage(path, problem)
    if "is not a TFRecord file" in described:  # text, most likely: the step before was skipped
        return "%s: %s: did you mean to run create_pretraining_data.py first?" % (flag, described)
    return "%s: %s; copy or rebuild the file" % (flag, described)


# A file whose last bytes hold no whole record is read through to find where it breaks; records
# longer than this are read through too (and pass, if whole).
TAIL_BYTES = 1 << 16


def check_framing(path: str, flag: str = "--input_file",
                  sidecars: Optional[Sidecars] = None) -> None:
    """Raises ``NorbertError`` when ``path`` is cut short (or damaged where that shows).

    The size against the sidecar's ``bytes_in_file`` when it has one; else the last
    ``TAIL_BYTES`` must end in a whole record (a file cut at a record boundary passes: only a
    count could tell). A short file is read through, checksums and all.
    """
    size = fileio.size(path)
    expected = sidecar.bytes_in_file(sidecar_of(path, sidecars), path)
    if expected is not None and expected != size:
        raise NorbertError(
            "%s: %s has %d bytes but its sidecar says %d: it is truncated or changed since it "
            "was built; copy or rebuild it" % (flag, path, size, expected))
    if size == 0:
        return
    if size > TAIL_BYTES:
        with fileio.open_binary(path) as f:
            f.seek(size - TAIL_BYTES)
            if tfrecord.ends_with_a_frame(f.read(TAIL_BYTES)):
                return
    problem = find_damage(path)
    if problem is not None:
        raise NorbertError(damage_message(flag, path, problem))


# -- sidecars and counts --------------------------------------------------------------------


def read_sidecars(files: Sequence[str]) -> Dict[str, Optional[dict]]:
    """Each file's sidecar, read once: the checks before a run all take them from here (each
    read is a round trip or two on gs://, and a run may have thousands of shards)."""
    return {path: sidecar.read(path) for path in files}


def sidecar_of(path: str, sidecars: Optional[Sidecars] = None) -> Optional[dict]:
    """``path``'s sidecar from ``sidecars`` (``read_sidecars``), or read if it is not there."""
    if sidecars is not None and path in sidecars:
        return sidecars[path]
    return sidecar.read(path)


def count_records(path: str, flag: str = "--input_file") -> int:
    """The records in ``path``, from its framing: each header read, the data skipped."""
    number = 0
    with fileio.open_binary(path) as f:
        for item in tfrecord.scan(f, fileio.size(path), read_data=False):
            if isinstance(item, tfrecord.Damage):
                # A header cut short or failing its checksum: the data checked too, to name
                # the first damage (a bad record before it would be missed by headers alone).
                problem = find_damage(path) or problem_of(item)
                raise NorbertError(damage_message(flag, path, problem))
            number = item.number
    return number


def records_in(path: str, flag: str = "--input_file",
               sidecars: Optional[Sidecars] = None) -> int:
    """The records in ``path``: its own sidecar's count, else counted (``count_records``).

    A shard set's shared sidecar counts the whole set, not the file: it is not used.
    """
    count = sidecar.records_in_file(sidecar_of(path, sidecars), path)
    return count if count is not None else count_records(path, flag)


# -- the records' shapes and kinds ----------------------------------------------------------


def first_record(record_file: str, flag: str = "--input_file") -> Optional[Dict[str, list]]:
    """The features of ``record_file``'s first record (None for an empty file).

    Raises ``NorbertError`` naming ``flag`` when that record is damaged, or is no
    ``tf.train.Example``.
    """
    with fileio.open_binary(record_file) as f:
        first = next(tfrecord.scan(f, fileio.size(record_file)), None)
    if first is None:
        return None  # an empty file holds no shapes to check
    if isinstance(first, tfrecord.Damage):
        raise NorbertError(damage_message(flag, record_file, problem_of(first)))
    try:
        features = tfrecord.decode_example(first.data)
    except (ValueError, IndexError, UnicodeDecodeError):
        raise NorbertError("%s: %s holds no pretraining records (its first record is not a "
                           "tf.train.Example): give the files create_pretraining_data wrote"
                           % (flag, record_file)) from None
    return features


def check_data(config, flag: str = "--input_file",
               model_vocab: Optional[Tuple[int, str]] = None,
               sidecars: Optional[Sidecars] = None) -> None:
    """Raises ``NorbertError`` when the records' lengths differ from the flags, a file is cut
    short, or (``model_vocab``: the model's vocab_size and the file that says it) the records
    hold ids the model's embedding table does not have.

    ``config``: an ``input_pipeline.InputConfig`` (its ``input_files``, ``max_seq_length`` and
    ``max_predictions_per_seq`` are read).
    """
    want = {"max_seq_length": config.max_seq_length,
            "max_predictions_per_seq": config.max_predictions_per_seq}
    for path in config.input_files:
        check_framing(path, flag, sidecars)
        meta = sidecar_of(path, sidecars)
        if meta is not None:
            found, where, vocab, vocab_problem = _shapes_in_sidecar(meta)
        else:
            first = first_record(path, flag)
            if first is None:
                continue
            found, where, vocab, vocab_problem = _shapes_in_record(first)
        for name, value in want.items():
            if found[name] is not None and found[name] != value:
                raise NorbertError(
                    "--%s=%d does not match the data: %s %s %s=%d; pass --%s=%d or rebuild "
                    "the data" % (name, value, path, where, name, found[name], name, found[name])
                )
        if model_vocab is not None and vocab is not None and vocab > model_vocab[0]:
            raise NorbertError(
                "%s %s, but the model's vocab_size is %d (%s): build the records with the "
                "model's vocab.txt, or give the bert_config.json that goes with the records' "
                "vocab" % (path, vocab_problem, model_vocab[0], model_vocab[1]))


def _shapes_in_sidecar(meta: Mapping):
    """(lengths found, where they were found, vocab size, what about the vocab) of a sidecar."""
    settings = sidecar.settings_of(meta)
    found = {k: settings.get(k) for k in ("max_seq_length", "max_predictions_per_seq")}
    if sidecar.masking_of(meta) == DYNAMIC:
        found["max_predictions_per_seq"] = None  # chosen when the masks are drawn
    vocab = settings.get("vocab_size")
    return found, "its sidecar says", vocab, "was built with a vocab of %d tokens" % (vocab or 0)


def _shapes_in_record(first: Mapping[str, list]):
    """``_shapes_in_sidecar``'s answer for a file without a sidecar, from its first record."""
    found = {"max_seq_length": len(first.get("input_ids", [])) or None,
             "max_predictions_per_seq": len(first.get("masked_lm_positions", [])) or None}
    ids = list(first.get("input_ids", [])) + list(first.get("masked_lm_ids", []))
    vocab = max(ids) + 1 if ids else None
    return found, "its first record has", vocab, "holds token id %d" % (max(ids) if ids else 0)


# The features that mark a record of each dynamic kind, for files without a sidecar.
_MASKING_MARKER, _PAIRING_MARKER = "maskable", "sentence_starts"

# (the dynamic kind, the static kind, the setting), for the errors.
_MASKING_WORDS = ("masks drawn at training time", "masks in the records", "masking")
_PAIRING_WORDS = ("chunks paired at training time", "sentence pairs", "pairing")

# (record file, its sidecar or None, the features its first record holds when it has none)
Kinds = List[Tuple[str, Optional[dict], frozenset]]


def _kinds(files: Sequence[str], flag: str, sidecars: Optional[Sidecars]) -> Kinds:
    """What tells each file's kind: its sidecar, else its first record's features (read once,
    for masking and pairing both)."""
    out = []
    for path in files:
        meta = sidecar_of(path, sidecars)
        names = frozenset()
        if meta is None:
            first = first_record(path, flag)
            names = frozenset(first or ())
        out.append((path, meta, names))
    return out


def dynamic_records_of(files: List[str], max_predictions_per_seq: int,
                       flag: str = "--input_file", sidecars: Optional[Sidecars] = None
                       ) -> Tuple[Optional[DynamicMasking], Optional[DynamicPairing]]:
    """(how masks are drawn, how pairs are made) as ``files`` are read: ``dynamic_masking_of``
    and ``dynamic_pairing_of`` in one pass over the files (a file without a sidecar has its
    first record read once, not twice). The masking's errors come first, as called apart."""
    kinds = _kinds(files, flag, sidecars)
    return _masking(kinds, max_predictions_per_seq, flag), _pairing(kinds, flag)


def dynamic_masking_of(files: List[str], max_predictions_per_seq: int,
                       flag: str = "--input_file",
                       sidecars: Optional[Sidecars] = None) -> Optional[DynamicMasking]:
    """How the masks of ``files`` are drawn as they are read, from their sidecars (the build's
    masking settings, the vocab's size and [MASK] id): None for records that hold their masks.

    Raises ``NorbertError`` for a mix of both kinds, or of dynamic builds that mask
    differently, and for dynamic records without their sidecar.
    """
    return _masking(_kinds(files, flag, sidecars), max_predictions_per_seq, flag)


def dynamic_pairing_of(files: List[str], flag: str = "--input_file",
                       sidecars: Optional[Sidecars] = None) -> Optional[DynamicPairing]:
    """How ``files``' chunks become pairs as they are read (``--pairing=dynamic``: the vocab's
    [CLS] and [SEP] ids, from the sidecars): None for records that hold pairs.

    Raises ``NorbertError`` for a mix of chunks and pairs, and for chunks without a sidecar.
    """
    return _pairing(_kinds(files, flag, sidecars), flag)


def _masking(kinds: Kinds, max_predictions_per_seq: int, flag: str) -> Optional[DynamicMasking]:
    def key_of(meta):
        if sidecar.masking_of(meta) == STATIC:
            return None
        settings = sidecar.settings_of(meta)
        return tuple(settings.get(k) for k in ("masked_lm_prob", "do_whole_word_mask",
                                               "whole_word_mask_per_word", "vocab_size",
                                               "mask_id"))

    key = _one_kind(kinds, flag, key_of, _MASKING_MARKER, _MASKING_WORDS)
    if key is None:
        return None
    prob, whole_word, per_word, vocab_size, mask_id = key
    return DynamicMasking(max_predictions_per_seq=max_predictions_per_seq,
                          vocab_size=vocab_size, mask_id=mask_id, masked_lm_prob=prob,
                          whole_word=whole_word, per_word=per_word)


def _pairing(kinds: Kinds, flag: str) -> Optional[DynamicPairing]:
    def key_of(meta):
        if sidecar.pairing_of(meta) == STATIC:
            return None
        return tuple(sidecar.settings_of(meta).get(k) for k in ("cls_id", "sep_id"))

    key = _one_kind(kinds, flag, key_of, _PAIRING_MARKER, _PAIRING_WORDS)
    return None if key is None else DynamicPairing(*key)


def _one_kind(kinds: Kinds, flag: str, key_of, marker: str, words: Tuple[str, str, str]):
    """The one key (``key_of(sidecar)``; None: the static kind) that all files share.

    A file without a sidecar is of the static kind unless its first record holds the feature
    ``marker`` (then: an error). ``words``: (the dynamic kind, the static kind, the setting),
    for the errors.
    """
    dynamic, static, setting = words
    found = {}  # key -> a file that has it
    for path, meta, names in kinds:
        if meta is None:
            if marker in names:
                raise NorbertError(
                    "%s: %s holds records for %s but has no sidecar (%s): copy it beside the "
                    "file" % (flag, path, dynamic, sidecar.path_for(path)))
            found.setdefault(None, path)
            continue
        found.setdefault(key_of(meta), path)
    if len(found) > 1:
        (a, path_a), (b, path_b) = list(found.items())[:2]
        kind = lambda key: dynamic if key is not None else static
        raise NorbertError("%s mixes records built differently: %s (%s) and %s (%s); give "
                           "records of one build's %s" % (flag, path_a, kind(a), path_b,
                                                          kind(b), setting))
    return next(iter(found), None)


def objective_of(files: Sequence[str], sidecars: Optional[Sidecars] = None) -> str:
    """The objective that every one of ``files`` was built for (``mlm_nsp`` or ``mlm``), from
    their sidecars; a file without one holds Google's pairs (``mlm_nsp``). Raises
    ``NorbertError`` naming the files of each objective when they differ."""
    found: Dict[str, List[str]] = {}
    for path in files:
        meta = sidecar_of(path, sidecars)
        found.setdefault(sidecar.objective_of(meta) if meta else MLM_NSP, []).append(path)
    if len(found) > 1:
        def named(paths: List[str]) -> str:
            more = " and %d more" % (len(paths) - 2) if len(paths) > 2 else ""
            return ", ".join(paths[:2]) + more

        raise NorbertError(
            "the run's records mix objectives: %s; train and evaluate on records of one "
            "--objective (rebuild the others)"
            % "; ".join("--objective=%s in %s" % (key, named(paths))
                        for key, paths in sorted(found.items())))
    return next(iter(found), MLM_NSP)
