r"""Scores AVVP predictions against the LLP dense annotations.

  python -m avjax.score --pred PRED.npz --annotations DIR --split test

Prints ONE JSON object to stdout: the AVVP scores in percent (keys seg_a seg_v
seg_av seg_type seg_event ev_a ev_v ev_av ev_type ev_event), num_clips, and
`report`: clips of the split without a prediction, predictions whose id is not
in the split, and the irregularities of the annotation files (see
avjax.data.readers.llp_annotations). A summary of the report goes to stderr.

File formats:
  PRED.npz  (numpy.savez) with three arrays:
    ids     str [N]: LLP filenames as in the `filename` column, e.g.
            "4YdbENYcIyE_23_33" (YouTube id + time range), each at most once.
    audio   bool [N, 10, 25]: audio[n, t, c] = class c audible in second t.
    visual  bool [N, 10, 25]: same for visible events. 0/1 integers are
            accepted; probabilities are not (threshold them first).
    Class order: avjax.data.classes.LLP_CLASSES (LLP_categories.txt order).
  DIR  the LLP annotation folder, tab-separated with a header row:
    AVVP_{val,test}_pd.csv   filename, event_labels (comma-separated classes)
    AVVP_eval_audio.csv      filename, onset, offset, event_labels (one class;
    AVVP_eval_visual.csv     integer seconds, segments onset..offset-1)
"""

import json
import os
import sys
from typing import Dict, List, Tuple

from absl import app
from absl import flags
import numpy as np

from avjax.data import classes as classes_lib
from avjax.data.readers import llp_annotations
from avjax.metrics import avvp
from avjax.utils import cli

PRED_KEYS = ("ids", "audio", "visual")
MISSING_POLICIES = ("empty", "skip", "error")


def define_flags(fv=flags.FLAGS) -> None:
  """Defines the command-line flags (only when run as a program)."""
  flags.DEFINE_string(
      "pred", None, "Prediction .npz with arrays `ids` (str [N], LLP "
      "filenames), `audio` and `visual` (bool [N, 10, 25]).", flag_values=fv)
  flags.DEFINE_string(
      "annotations", None, "Folder with the LLP annotation files "
      "AVVP_{val,test}_pd.csv and the eval CSVs (tab-separated, header row).",
      flag_values=fv)
  flags.DEFINE_enum("split", "test", llp_annotations.DENSE_SPLITS,
                    "Split to score; its clips come from AVVP_<split>_pd.csv.",
                    flag_values=fv)
  flags.DEFINE_string(
      "eval_audio", "AVVP_eval_audio.csv", "Audio eval file in --annotations "
      "(columns filename, onset, offset, event_labels).", flag_values=fv)
  flags.DEFINE_string(
      "eval_visual", "AVVP_eval_visual.csv", "Visual eval file in "
      "--annotations (same columns as --eval_audio).", flag_values=fv)
  flags.DEFINE_enum(
      "missing", "empty", MISSING_POLICIES, "Clips of the split without a "
      "prediction: `empty` scores them as all-False predictions (the split "
      "stays whole), `skip` leaves them out, `error` fails.", flag_values=fv)
  flags.mark_flags_as_required(["pred", "annotations"], flag_values=fv)


def _binary(name: str, x: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
  if x.shape != shape:
    raise ValueError(f"prediction array `{name}` has shape {x.shape}; "
                     f"expected [N, T, C] = {shape} (N = len(ids))")
  if x.dtype != np.bool_ and not np.isin(x, (0, 1)).all():
    raise ValueError(f"prediction array `{name}` must be bool (or 0/1), got "
                     f"dtype {x.dtype} with other values; threshold first")
  return x.astype(bool)


def load_predictions(path: str, num_segments: int = 10,
                     num_classes: int = len(classes_lib.LLP_CLASSES)):
  """Reads and checks a prediction .npz: (ids list, audio, visual)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"prediction file not found: {path} (expected an "
                            f".npz with arrays {list(PRED_KEYS)})")
  with np.load(path, allow_pickle=False) as data:
    missing = [k for k in PRED_KEYS if k not in data.files]
    if missing:
      raise ValueError(f"{path} lacks array(s) {missing}; expected "
                       f"{list(PRED_KEYS)}, found {sorted(data.files)}")
    try:
      ids = data["ids"]
    except ValueError:
      raise ValueError(f"{path}: `ids` must be a str array (np.str_), not "
                       "an object array") from None
    audio, visual = data["audio"], data["visual"]
  if ids.ndim != 1 or ids.dtype.kind not in "US":
    raise ValueError(f"{path}: `ids` must be a 1-D str array, got dtype "
                     f"{ids.dtype} shape {ids.shape}")
  ids = [i.decode() if isinstance(i, bytes) else str(i) for i in ids.tolist()]
  if len(set(ids)) != len(ids):
    raise ValueError(f"{path}: `ids` holds duplicates")
  shape = (len(ids), num_segments, num_classes)
  return ids, _binary("audio", audio, shape), _binary("visual", visual, shape)


def _listing(names: List[str]) -> Dict:
  return {"count": len(names),
          "examples": names[:llp_annotations.MAX_EXAMPLES]}


def score(pred: str, annotations: str, split: str = "test",
          eval_audio: str = "AVVP_eval_audio.csv",
          eval_visual: str = "AVVP_eval_visual.csv",
          missing: str = "empty") -> Dict:
  """Scores a prediction file; returns the JSON object the program prints."""
  if missing not in MISSING_POLICIES:
    raise ValueError(f"missing must be one of {MISSING_POLICIES}")
  ids, gt_a, gt_v, ann_report = llp_annotations.read_dense(
      annotations, split, eval_audio, eval_visual)
  p_ids, p_a, p_v = load_predictions(pred, gt_a.shape[1], gt_a.shape[2])
  where = {f: i for i, f in enumerate(p_ids)}
  split_ids = set(ids)
  no_pred = [f for f in ids if f not in where]
  if no_pred and missing == "error":
    raise ValueError(f"{len(no_pred)} clips of split {split!r} have no "
                     f"prediction, e.g. {no_pred[:3]}")
  rows = np.array([where.get(f, -1) for f in ids], np.int64)
  has = rows >= 0
  pred_a, pred_v = np.zeros_like(gt_a), np.zeros_like(gt_v)
  pred_a[has], pred_v[has] = p_a[rows[has]], p_v[rows[has]]
  keep = has if missing == "skip" else np.ones(len(ids), bool)
  result = avvp.avvp_scores(pred_a[keep], pred_v[keep], gt_a[keep],
                            gt_v[keep])
  result["report"] = {
      "missing_policy": missing,
      "clips_without_prediction": _listing(no_pred),
      "predictions_not_in_split": _listing(
          [f for f in p_ids if f not in split_ids]),
      "annotations": ann_report,
  }
  return result


def _log_report(report: Dict) -> None:
  for key in ("clips_without_prediction", "predictions_not_in_split"):
    if report[key]["count"]:
      print(f"avjax.score: {key}: {report[key]['count']}; e.g. "
            f"{report[key]['examples'][:3]}", file=sys.stderr)
  for line in llp_annotations.summary_lines(report["annotations"]):
    print(f"avjax.score: annotations: {line}", file=sys.stderr)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  fv = flags.FLAGS
  # FileNotFoundError / ValueError name the file and the expectation; the
  # boundary (`avjax.utils.cli`) prints them as one line and exits 2.
  result = score(fv.pred, fv.annotations, fv.split, fv.eval_audio,
                 fv.eval_visual, fv.missing)
  _log_report(result["report"])
  print(json.dumps(result))
  return 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)
