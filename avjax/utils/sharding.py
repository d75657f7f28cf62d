"""Device mesh, shardings and host-to-global-array feeding (multi-host safe)."""

import queue
import threading
from typing import Dict, Iterator

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

ID_BYTES = 96  # clip ids are carried through jit as fixed-width uint8 rows


def make_mesh() -> Mesh:
  """A 1-D data-parallel mesh over every device of every host."""
  return Mesh(np.asarray(jax.devices()), ("data",))


def data_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def check_batch_size(global_batch_size: int, what: str = "batch_size") -> int:
  """Returns the per-host batch size or raises a clear error."""
  n, hosts = jax.device_count(), jax.process_count()
  if global_batch_size <= 0 or global_batch_size % n:
    raise ValueError(
        f"{what}={global_batch_size} must be a positive multiple of the "
        f"global device count {n} ({hosts} host(s) x {jax.local_device_count()}"
        f" device(s)); valid values include {n}, {2 * n}, {4 * n}, ...")
  return global_batch_size // hosts


def ids_to_array(ids) -> np.ndarray:
  """Encodes a list/array of str or bytes ids as uint8 [N, ID_BYTES]."""
  out = np.zeros((len(ids), ID_BYTES), np.uint8)
  for i, s in enumerate(ids):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    if len(b) > ID_BYTES:
      raise ValueError(f"clip id {b!r} is longer than {ID_BYTES} bytes")
    out[i, :len(b)] = np.frombuffer(b, np.uint8)
  return out


def array_to_ids(arr: np.ndarray):
  return [bytes(r).rstrip(b"\0").decode("utf-8") for r in np.asarray(arr)]


def to_global(batch: Dict[str, np.ndarray], mesh: Mesh) -> Dict[str, jax.Array]:
  """Host-local batch -> global arrays sharded over the data axis.

  String `clip_id`s are converted to `clip_id_bytes` uint8 rows first.
  """
  batch = dict(batch)
  if "clip_id" in batch:
    batch["clip_id_bytes"] = ids_to_array(batch.pop("clip_id"))
  sh = data_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sh, np.asarray(v))
          for k, v in batch.items()}


def prefetch_to_mesh(it: Iterator[Dict[str, np.ndarray]], mesh: Mesh,
                     size: int = 2) -> Iterator[Dict[str, jax.Array]]:
  """Moves batches to devices in a background thread, `size` in flight."""
  q = queue.Queue(maxsize=size)
  sentinel = object()

  def producer():
    try:
      for b in it:
        q.put(to_global(b, mesh))
    except BaseException as e:  # pylint: disable=broad-except
      q.put(e)
      return
    q.put(sentinel)

  threading.Thread(target=producer, daemon=True).start()
  while True:
    item = q.get()
    if item is sentinel:
      return
    if isinstance(item, BaseException):
      raise item
    yield item


def gather(tree):
  """All-gathers global arrays to NumPy on every host (row order = global)."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return multihost_utils.process_allgather(tree, tiled=True)
