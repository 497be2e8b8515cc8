"""Which objective trained the checkpoints of a run's folder: ``training_objective.json``
beside them, written by ``run_pretraining`` and read by the export for its model card.

A checkpoint holds Google's variables whichever objective trained it (``--objective=mlm``
keeps the next-sentence head and the pooler as they were), so the folder says it: the chief of
a training run notes its records' objective before it trains. The file lists the objectives
of the runs into the folder, oldest first, a run of the same objective as the one before it
counted once: ``{"format": 1, "objectives": ["mlm_nsp", "mlm"]}`` (a folder trained with
Google's objective, then resumed on masked-LM-only records). Folders from before the file,
or Google's, have none: their objective is not known.
"""

import json
from typing import List, Optional

from norbert import fileio
from norbert.data.features import OBJECTIVES

FILE_NAME = "training_objective.json"
_FORMAT = 1


def path_in(folder: str) -> str:
    """The record's path in ``folder`` (a bucket's path keeps its forward slashes)."""
    return folder.rstrip("/") + "/" + FILE_NAME


def read(folder: str) -> Optional[List[str]]:
    """The objectives of the runs into ``folder``, oldest first; None when it has no record
    (or one this version cannot read: not known is said, never guessed)."""
    path = path_in(folder)
    if not fileio.exists(path):
        return None
    try:
        data = json.loads(fileio.read_bytes(path, what="objective record").decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    objectives = data.get("objectives")
    if not isinstance(objectives, list) or not objectives \
            or any(o not in OBJECTIVES for o in objectives):
        return None
    return objectives


def note(folder: str, objective: str) -> List[str]:
    """Adds ``objective`` to ``folder``'s record unless it is already the last one there;
    returns the record. Written atomically: a reader sees the old record or the new one."""
    if objective not in OBJECTIVES:
        raise ValueError("objective %r: one of %s" % (objective, ", ".join(OBJECTIVES)))
    objectives = read(folder) or []
    if objectives[-1:] != [objective]:
        objectives.append(objective)
        with fileio.atomic_output(path_in(folder), "wb") as f:
            f.write(json.dumps({"format": _FORMAT, "objectives": objectives}).encode("utf-8"))
    return objectives
