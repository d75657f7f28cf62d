"""Write-once, race-safe cache of generated datasets (the synthetic sets).

A generated dataset lives in `root/<name>_<key>`, where the key hashes the
generator's config and source files: a changed config or generator never
reuses a stale copy. The dataset is written into a temporary sibling folder
and renamed into place, so a reader never sees a half-written dataset and
concurrent writers (e.g. two sweeps starting at once) race safely.
"""

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from typing import Any, Callable, Sequence

from avjax.data import tfrecord


def read_sources(paths: Sequence[str]) -> bytes:
  """The bytes of the generator's source files (read once, at import, so a
  long-running process keys by the code it actually runs)."""
  code = b""
  for p in paths:
    with open(p, "rb") as f:
      code += f.read()
  return code


def cache_key(cfg: Any, source: bytes) -> str:
  desc = json.dumps(dataclasses.asdict(cfg), sort_keys=True)
  return hashlib.sha1(desc.encode() + source).hexdigest()[:10]


def materialize(root: str, name: str, cfg: Any, source: bytes,
                write: Callable[[str], Any]) -> str:
  """Returns `root/<name>_<key>`, calling `write(tmp_dir)` once if missing.

  Args:
    root: cache directory.
    name: dataset name (folder prefix).
    cfg: the generator's (dataclass) config.
    source: the generator's source bytes (`read_sources`).
    write: writes the whole dataset (dataset_info.json last) into a folder.
  """
  key = cache_key(cfg, source)
  out = os.path.join(root, f"{name}_{key}")
  if os.path.exists(os.path.join(out, tfrecord.INFO_FILE)):
    return out
  os.makedirs(root, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{name}_{key}_", dir=root)
  logging.info("generating the %s dataset in %s", name, out)
  try:
    write(tmp)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  try:
    os.replace(tmp, out)
  except OSError:  # another process won the race; its copy is identical
    shutil.rmtree(tmp, ignore_errors=True)
  return out
