"""Pictures of the audio-guided visual attention, one row per clip.

  python -m avjax.projects.ave.attention --workdir=DIR --split=test --num_clips=4 \
      --out=/tmp/att.png [--clips=ID,ID] [--frames_dir=F]

Reads `DIR/pred_<split>.npz` (written by the `ave_supervised` trainer for a
model with attention) and draws, for every segment of each clip, the 7x7
attention map as a heatmap; with --frames_dir (F/<clip id>/<t>.jpg|png, t =
0..T-1) the map is upsampled and overlaid on the frame. On the synthetic
dataset the true sounding-object regions are outlined and every row is
labelled with its class and the attention mass on them (vs uniform); the
summary (also over the whole split) is printed as JSON.
"""

import json
import os

from absl import app
from absl import flags
import numpy as np

from avjax.utils import cli


def define_flags():
  """The command's flags (defined when run, not on import)."""
  flags.DEFINE_string("workdir", None, "Run directory holding pred_<split>.npz")
  flags.DEFINE_string("split", "test", "Split whose predictions to draw.")
  flags.DEFINE_integer("num_clips", 4, "Clips to draw (the first ones with an "
                       "event shorter than the clip come first).")
  flags.DEFINE_list("clips", None, "Clip ids to draw instead.")
  flags.DEFINE_string("frames_dir", None, "Optional frames F/<id>/<t>.jpg|png.")
  flags.DEFINE_string("out", None, "Output PNG (default DIR/attention_<split>"
                      ".png).")
  flags.mark_flags_as_required(["workdir"])


def load(workdir: str, split: str) -> dict:
  path = os.path.join(workdir, f"pred_{split}.npz")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: train/evaluate the run first")
  pred = dict(np.load(path))
  if "attention" not in pred:
    raise ValueError(f"{path} has no attention maps (a model without "
                     "audio-guided attention?)")
  return pred


def synthetic_truth(workdir: str, split: str, ids):
  """Ground-truth layouts when the run used the synthetic AVE dataset."""
  from avjax.data import datasets  # pylint: disable=g-import-not-at-top
  from avjax.data.synthetic import ave as synthetic_ave  # pylint: disable=g-import-not-at-top
  from avjax.data import tfrecord  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    data_cfg = ml_collections.ConfigDict(json.load(f)["data"])
  if data_cfg.name != "synthetic_ave":
    return None
  info = tfrecord.read_info(datasets.resolve(data_cfg))
  cfg = synthetic_ave.SyntheticAVEConfig(
      **info["extra"]["synthetic_ave_config"])
  return synthetic_ave.truth_by_id(cfg, split, ids)


def _frame(frames_dir, cid, t):
  import matplotlib.image as mpimg  # pylint: disable=g-import-not-at-top
  for ext in ("jpg", "png", "jpeg"):
    p = os.path.join(frames_dir, cid, f"{t}.{ext}")
    if os.path.exists(p):
      return mpimg.imread(p)
  return None


def draw(pred: dict, rows, out: str, truth=None, frames_dir=None) -> None:
  """Heatmap grid: one row per clip index in `rows`, one column a segment."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from avjax.data.synthetic import ave as synthetic_ave  # pylint: disable=g-import-not-at-top
  t = pred["attention"].shape[1]
  side = int(round(np.sqrt(pred["attention"].shape[2])))
  fig, axes = plt.subplots(len(rows), t, figsize=(1.3 * t, 1.5 * len(rows)),
                           squeeze=False)
  for r, n in enumerate(rows):
    cid = str(pred["ids"][n])
    lay = truth[cid] if truth else None
    for s in range(t):
      ax = axes[r, s]
      att = pred["attention"][n, s].reshape(side, side)
      img = _frame(frames_dir, cid, s) if frames_dir else None
      if img is not None:
        ax.imshow(img)
        h, w = img.shape[:2]
        ax.imshow(att, cmap="jet", alpha=0.5, extent=(0, w, h, 0),
                  interpolation="bilinear")
      else:
        ax.imshow(att, cmap="viridis", vmin=0)
      if lay is not None:
        ys, xs = np.nonzero(lay["object"])
        ax.add_patch(plt.Rectangle((xs.min() - .5, ys.min() - .5),
                                   np.ptp(xs) + 1, np.ptp(ys) + 1, fill=False,
                                   ec="red" if lay["event"][s] else "white",
                                   lw=1.5, ls="-" if lay["event"][s] else ":"))
      ax.set_xticks([])
      ax.set_yticks([])
      if r == 0:
        ax.set_title(f"t={s}", fontsize=8)
    label = cid
    if lay is not None:
      mass = float((pred["attention"][n] * lay["object"].reshape(-1)).sum(
          -1)[lay["event"]].mean()) if lay["event"].any() else float("nan")
      label += (f"\n{synthetic_ave.CLASSES[lay['class']][:18]}\n"
                f"mass {mass:.2f} (unif {lay['object'].mean():.2f})")
    axes[r, 0].set_ylabel(label, fontsize=7)
  fig.tight_layout()
  fig.savefig(out, dpi=100)
  plt.close(fig)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  fl = flags.FLAGS
  pred = load(fl.workdir, fl.split)
  ids = [str(i) for i in pred["ids"]]
  truth = synthetic_truth(fl.workdir, fl.split, ids)
  if fl.clips:
    missing = [c for c in fl.clips if c not in ids]
    if missing:
      raise app.UsageError(f"clips not in pred_{fl.split}.npz: {missing}")
    rows = [ids.index(c) for c in fl.clips]
  else:
    short = [n for n, c in enumerate(ids)
             if truth and 0 < truth[c]["event"].sum() < len(
                 truth[c]["event"])]
    rows = (short + [n for n in range(len(ids)) if n not in short]
            )[:fl.num_clips]
  out = fl.out or os.path.join(fl.workdir, f"attention_{fl.split}.png")
  draw(pred, rows, out, truth, fl.frames_dir)
  summary = {"out": out, "clips": [ids[n] for n in rows]}
  if truth:
    from avjax.metrics import ave as ave_metrics  # pylint: disable=g-import-not-at-top
    regions = np.stack([truth[c]["object"].reshape(-1) for c in ids])
    event = np.stack([truth[c]["event"] for c in ids])
    summary["split"] = ave_metrics.attention_mass(pred["attention"], regions,
                                                  event)
    summary["split_background_segments"] = ave_metrics.attention_mass(
        pred["attention"], regions, ~event)
  print(json.dumps(summary, indent=1))


if __name__ == "__main__":
  define_flags()
  cli.run(main)
