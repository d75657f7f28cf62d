"""Writes a random LLP dataset in the published layout (tests, benchmarks).

  python -m avjax.data.make_llp_fixture --out=/tmp/llp_fixture \
      --train=1000 --val=100 --test=100

Features are random float32 at the published shapes (see `avjax.data.readers.llp`);
annotations are random but consistent (weak labels = union of dense labels),
tab-separated with the published headers.
"""

import argparse
import os
import string
import sys
from typing import Dict, Iterable, List, Sequence

import numpy as np

from avjax.data import classes as classes_lib
from avjax.data.readers import llp

ALPHABET = string.ascii_letters + string.digits + "-_"


def random_filenames(rng, n: int) -> List[str]:
  out = []
  for _ in range(n):
    vid = "".join(rng.choice(list(ALPHABET), 11))
    start = int(rng.integers(0, 300))
    out.append(f"{vid}_{start}_{start + 10}")
  return out


def write_features(root: str, filenames: Iterable[str], seed: int = 0,
                   streams=llp.STREAMS.values()) -> None:
  """Writes `feats/<folder>/<id>.npy` at the published shapes."""
  for s in streams:
    os.makedirs(os.path.join(root, s.folder), exist_ok=True)
  for i, filename in enumerate(filenames):
    rng = np.random.default_rng([seed, i])
    for s in streams:
      shape = (llp.NUM_SEGMENTS * s.spec.frames_per_segment,) + s.spec.shape
      np.save(os.path.join(root, s.folder, llp.feature_id(filename) + ".npy"),
              rng.standard_normal(shape, dtype=np.float32))


def _write_table(path: str, header: Sequence[str], rows) -> None:
  with open(path, "w") as f:
    f.write("\t".join(header) + "\n")
    for row in rows:
      f.write("\t".join(str(x) for x in row) + "\n")


def _random_events(rng, classes):
  """[(modality, onset, offset, class)] and the union of their classes."""
  names = list(rng.choice(classes, int(rng.integers(1, 4)), replace=False))
  events = []
  for name in names:
    for modality in ("audio", "visual")[:int(rng.integers(1, 3))]:
      onset = int(rng.integers(0, 9))
      events.append((modality, onset, int(rng.integers(onset + 1, 11)), name))
  return names, events


def write_annotations(root: str, filenames: Dict[str, List[str]],
                      seed: int = 0, classes=classes_lib.LLP_CLASSES) -> None:
  """Writes the AVVP_*.csv files and LLP_categories.txt for `filenames`."""
  rng = np.random.default_rng(seed)
  eval_rows = {"audio": [], "visual": []}
  for split, names in filenames.items():
    rows = []
    for filename in names:
      labels, events = _random_events(rng, list(classes))
      rows.append((filename, ",".join(labels)))
      if split != "train":
        for modality, onset, offset, name in events:
          eval_rows[modality].append((filename, onset, offset, name))
    _write_table(os.path.join(root, llp.annotations.SPLIT_FILES[split]),
                 ("filename", "event_labels"), rows)
  for modality, rows in eval_rows.items():
    _write_table(os.path.join(root, f"AVVP_eval_{modality}.csv"),
                 ("filename", "onset", "offset", "event_labels"), rows)
  with open(os.path.join(root, "LLP_categories.txt"), "w") as f:
    f.write("".join(c + "\n" for c in classes))


def write_fixture(root: str, train: int = 4, val: int = 2, test: int = 2,
                  seed: int = 0) -> Dict[str, List[str]]:
  """Writes a complete random LLP dataset; returns the filenames by split."""
  os.makedirs(root, exist_ok=True)
  rng = np.random.default_rng(seed)
  all_names = random_filenames(rng, train + val + test)
  filenames = {"train": all_names[:train],
               "val": all_names[train:train + val],
               "test": all_names[train + val:]}
  write_annotations(root, filenames, seed)
  write_features(root, all_names, seed)
  return filenames


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--train", type=int, default=1000)
  parser.add_argument("--val", type=int, default=100)
  parser.add_argument("--test", type=int, default=100)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  names = write_fixture(args.out, args.train, args.val, args.test, args.seed)
  print(f"wrote {sum(map(len, names.values()))} clips to {args.out}")


if __name__ == "__main__":
  from avjax.utils import cli  # pylint: disable=g-import-not-at-top
  sys.exit(cli.call(lambda argv: main(), prog="avjax.data.make_llp_fixture"))
