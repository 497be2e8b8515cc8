"""The sidecar: ``<record file>.meta.json``, the settings and counts of one record file.

One home for the format: built here from a build's config and counts, written here (atomically),
read here by the training input pipeline (which checks the records' shapes against it before any
graph is built), and compared here by the sharded builder to tell a complete shard from a stale
one. Layout::

    {"format": "norbert-pretraining-data", "format_version": 1,
     "file": "train.tfrecord", "instances_in_file": 1234, "output_files": [...],
     "settings": {"mode", "max_seq_length", ..., "do_lower_case", "strip_accents",
                  "tokenize_chinese_chars", "never_split", ..., "vocab_sha256", "vocab_size",
                  with --masking=dynamic "masking": "dynamic", "mask_id",
                  with --pairing=dynamic "pairing": "dynamic", "cls_id", "sep_id",
                  with --objective=mlm "objective": "mlm", "cross_documents" (and
                  with --whole_sentences "whole_sentences": true),
                  with --dedup=exact "dedup": "exact", with another --text_field
                  "text_field", with --heldout_documents "heldout_documents",
                  "heldout_output_file"},
     "features": {name: {"dtype", "length"}},
     "counts": {"input_files", "lines", ..., "instances", "masked_tokens", "random_next",
                "duplicate_documents"},  (chunk records count as instances; random_next 0)
     "inputs": [...],
     with --heldout_documents "heldout": {"role": "training" (or "held-out" in the held-out
     file's own sidecar), "documents", "random_seed", "heldout_output_file" (or
     "training_output_files")}}

The sharded (and Beam) mode adds ``shard_index``, ``input_bytes``, ``bytes_in_file``,
``build_seconds`` and four settings (``num_output_shards``, ``block_mb``, ``masking_draws``,
and ``planner``: the version of ``norbert.data.slices``' planner that cut the input, 1 when
absent) to each shard's sidecar, and writes one for the whole set (``for_set``:
``<output_file>.meta.json``, with ``"shard_set": true``, ``records_per_file`` and the counts of
all shards together, without ``shard_index`` or ``instances_in_file``).
"""

import dataclasses
import json
import os
import re
from typing import Dict, List, Mapping, Optional

from norbert import fileio
from norbert.data.config import DataConfig, DataSummary
from norbert.data.documents import CorpusStats
from norbert.data.features import MLM_NSP, STATIC, feature_schema
from norbert.errors import NorbertError
from norbert.tokenization.options import TokenizerOptions

FORMAT = "norbert-pretraining-data"
FORMAT_VERSION = 1
SUFFIX = ".meta.json"

# What makes two shard sidecars describe the same shard: equal in all of these, an earlier
# run's shard is the one this run would build.
_IDENTITY = ("format", "format_version", "file", "shard_index", "settings", "inputs",
             "input_bytes")
_SHARD_RE = re.compile(r"^(.*)-\d{5}-of-\d{5}$")


def path_for(record_file: str) -> str:
    """The sidecar's path beside ``record_file``."""
    return record_file + SUFFIX


def counts_of(summary: DataSummary) -> Dict[str, int]:
    """The ``counts`` section for a build's (or one shard's) summary."""
    corpus = summary.corpus
    return {
        "input_files": corpus.files,
        "lines": corpus.lines,
        "bad_lines": corpus.bad_lines,
        "documents": corpus.documents,
        "sentences": corpus.sentences,
        "corpus_tokens": corpus.tokens,
        "instances": summary.instances,
        "instance_tokens": summary.instance_tokens,
        "masked_tokens": summary.masked_tokens,
        "random_next": summary.random_next,
        "duplicate_documents": corpus.duplicates,
    }


def add_counts(summary: DataSummary, counts: Mapping[str, int]) -> None:
    """Adds one file's ``counts`` section to ``summary`` (the inverse of ``counts_of``)."""
    corpus = summary.corpus
    corpus.lines += counts["lines"]
    corpus.bad_lines += counts["bad_lines"]
    corpus.documents += counts["documents"]
    corpus.sentences += counts["sentences"]
    corpus.tokens += counts["corpus_tokens"]
    corpus.duplicates += counts.get("duplicate_documents", 0)  # absent before --dedup
    summary.instances += counts["instances"]
    summary.instance_tokens += counts["instance_tokens"]
    summary.masked_tokens += counts["masked_tokens"]
    summary.random_next += counts["random_next"]


def build(config: DataConfig, options: TokenizerOptions, input_paths: List[str],
          output_paths: List[str], path: str, vocab_sha: str, vocab_size: int,
          summary: Optional[DataSummary] = None, count: int = 0,
          vocab: Optional[Mapping[str, int]] = None) -> Dict:
    """The sidecar of ``path``; without ``summary``, a template with no counts (sharded mode)."""
    schema = feature_schema(config.max_seq_length, config.max_predictions_per_seq,
                            config.masking, config.pairing)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "file": os.path.basename(path),
        "instances_in_file": count,
        "output_files": output_paths,
        "settings": {
            "mode": config.mode,
            "max_seq_length": config.max_seq_length,
            "max_predictions_per_seq": config.max_predictions_per_seq,
            "masked_lm_prob": config.masked_lm_prob,
            "short_seq_prob": config.short_seq_prob,
            **options.settings(),  # do_lower_case, strip_accents, tokenize_chinese_chars, ...
            "do_whole_word_mask": config.do_whole_word_mask,
            "whole_word_mask_per_word": config.whole_word_mask_per_word,
            "dupe_factor": config.dupe_factor,
            "random_seed": config.random_seed,
            "vocab_file": config.vocab_file,
            "vocab_sha256": vocab_sha,
            "vocab_size": vocab_size,
        },
        "features": {name: {"dtype": t, "length": n} for name, (t, n) in schema.items()},
        "counts": counts_of(summary or DataSummary(corpus=CorpusStats())),
        "inputs": input_paths,
    }
    # What training needs to draw the masks, and the pairs (static builds say nothing).
    if config.dynamic:
        meta["settings"].update(masking=config.masking, mask_id=vocab["[MASK]"])
    if config.pairs_dynamic:
        meta["settings"].update(pairing=config.pairing, cls_id=vocab["[CLS]"],
                                sep_id=vocab["[SEP]"])
    # Said only when asked for, so that older shards stay complete (absent: mlm_nsp).
    if config.objective != MLM_NSP:
        meta["settings"].update(objective=config.objective,
                                cross_documents=config.cross_documents)
        if config.whole_sentences:  # absent: sentences split to fill records (older sidecars)
            meta["settings"]["whole_sentences"] = True
    if config.dedup != "none":
        meta["settings"]["dedup"] = config.dedup
    if config.text_field != "text":
        meta["settings"]["text_field"] = config.text_field
    if config.heldout_documents:
        meta["settings"].update(heldout_documents=config.heldout_documents,
                                heldout_output_file=config.heldout_output_file)
        meta["heldout"] = {"role": "training", "documents": config.heldout_documents,
                           "random_seed": config.random_seed,
                           "heldout_output_file": config.heldout_output_file}
    if summary is None:
        del meta["instances_in_file"], meta["counts"]
    return meta


def shard_template(template: Mapping, input_bytes: int, num_shards: int, block_mb: float,
                   planner: int) -> Dict:
    """``build``'s template (no counts) for a set of shards: what the sharded mode adds to
    every shard's sidecar before the shard is built."""
    meta = dict(template, input_bytes=input_bytes)
    meta["settings"] = dict(template["settings"], num_output_shards=num_shards,
                            block_mb=block_mb, masking_draws="lazy", planner=planner)
    return meta


def for_shard(template: Mapping, path: str, index: int) -> Dict:
    """Shard ``index``'s sidecar before it is built: ``shard_template``'s, naming its file."""
    return dict(template, file=os.path.basename(path), shard_index=index)


def built_shard(meta: Mapping, seconds: float, summary: DataSummary, size: int) -> Dict:
    """A shard's sidecar once its file is complete: ``for_shard``'s ``meta`` with the seconds
    the build took, its records and bytes, and its counts (``summary``)."""
    return dict(meta, build_seconds=round(seconds, 3), instances_in_file=summary.instances,
                bytes_in_file=size, counts=counts_of(summary))


def mark_heldout(meta: Dict, config: DataConfig, training_outputs: List[str]) -> None:
    """Makes ``build``'s sidecar that of the held-out records (``norbert.data.heldout``): built
    by the reference-exact steps whatever the training records' mode, and saying so."""
    local = dataclasses.replace(config, num_workers=None, num_output_shards=None)
    meta["settings"]["mode"] = local.mode
    meta["heldout"] = {"role": "held-out", "documents": config.heldout_documents,
                       "random_seed": config.random_seed,
                       "training_output_files": list(training_outputs)}


def heldout_of(meta: Mapping) -> Optional[Dict]:
    """The sidecar's ``heldout`` section (``role``: ``training`` or ``held-out``), or None."""
    return meta.get("heldout")


def for_set(template: Mapping, summary: DataSummary) -> Dict:
    """The sidecar of a whole shard set (``<output_file>.meta.json``): a shard's sidecar
    ``template`` with the counts of all shards together and each shard's record count."""
    meta = {k: v for k, v in template.items() if k not in ("file", "shard_index")}
    meta["file"] = template["file"]
    meta["shard_set"] = True
    meta["records_per_file"] = list(summary.records_per_file)
    meta["counts"] = counts_of(summary)
    return meta


def settings_of(meta: Mapping) -> Mapping:
    """The build's settings (a sidecar without a ``settings`` section is read as flat)."""
    return meta.get("settings", meta)


def records_in_file(meta: Optional[Mapping], record_file: str) -> Optional[int]:
    """The records of ``record_file`` its sidecar ``meta`` counts; None when ``meta`` is not the
    file's own (a shard set's shared sidecar counts the whole set) or holds no count."""
    return _own_count(meta, record_file, "instances_in_file")


def bytes_in_file(meta: Optional[Mapping], record_file: str) -> Optional[int]:
    """The bytes ``record_file`` had when built, as ``records_in_file`` tells its records."""
    return _own_count(meta, record_file, "bytes_in_file")


def _own_count(meta: Optional[Mapping], record_file: str, key: str) -> Optional[int]:
    if meta is None or meta.get("file") != os.path.basename(record_file):
        return None
    value = meta.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def masking_of(meta: Mapping) -> str:
    """``static`` or ``dynamic``: whether the records need masks drawn when they are read."""
    return meta.get("settings", {}).get("masking", STATIC)


def objective_of(meta: Mapping) -> str:
    """``mlm_nsp`` (pairs; also every sidecar written before the setting existed) or ``mlm``
    (packed sequences, masked LM only)."""
    return meta.get("settings", {}).get("objective", MLM_NSP)


def pairing_of(meta: Mapping) -> str:
    """``static`` or ``dynamic``: whether the records hold chunks to pair when read."""
    return meta.get("settings", {}).get("pairing", STATIC)


def write(path: str, meta: Mapping) -> None:
    """Writes ``meta`` as indented JSON to ``path`` atomically."""
    text = json.dumps(meta, indent=2, sort_keys=False) + "\n"
    with fileio.atomic_output(path, "wb") as f:
        f.write(text.encode("utf-8"))


def read_file(path: str) -> dict:
    """The sidecar at ``path``; ``NorbertError`` when it is unreadable or not JSON."""
    try:
        meta = json.loads(fileio.read_bytes(path, "sidecar").decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise NorbertError("sidecar %s is not valid JSON: delete or rewrite it" % path) from None
    if not isinstance(meta, dict):
        raise NorbertError("sidecar %s is not a JSON object: delete or rewrite it" % path)
    return meta


def read(record_file: str) -> Optional[dict]:
    """The sidecar of a record file (its own, or its shard set's), or None where none exists."""
    candidates = [path_for(record_file)]
    shard = _SHARD_RE.match(record_file)
    if shard:
        candidates.append(path_for(shard.group(1)))
    for path in candidates:
        if fileio.exists(path):
            return read_file(path)
    return None


def planner_of(meta: Mapping) -> int:
    """The version of the planner that cut a shard's input (1: before it was recorded)."""
    return meta.get("settings", {}).get("planner", 1)


def _same_but_planner(found: Mapping, template: Mapping) -> bool:
    def without(meta: Mapping) -> Dict:
        settings = {k: v for k, v in meta.get("settings", {}).items() if k != "planner"}
        return {k: settings if k == "settings" else meta.get(k) for k in _IDENTITY}

    return without(found) == without(template)


def same_shard(found: Mapping, template: Mapping) -> bool:
    """Whether an existing sidecar describes the shard ``template`` would build, complete.

    A shard cut by another planner is another shard, but for a set of one shard: its one slice
    is the whole input, read alike by every planner, so its records are the same."""
    if not isinstance(found.get("counts"), dict):
        return False
    if all(found.get(k) == template.get(k) for k in _IDENTITY):
        return True
    return (template.get("settings", {}).get("num_output_shards") == 1
            and _same_but_planner(found, template))


def cut_by_other_planner(found: Mapping, template: Mapping) -> bool:
    """Whether ``found`` is ``template``'s shard but for the planner that cut the input (and so
    is rebuilt: its slice's documents may differ)."""
    return planner_of(found) != planner_of(template) and _same_but_planner(found, template)
