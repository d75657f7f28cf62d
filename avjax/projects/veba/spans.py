r"""Locates audio-visual syncing spans (VEBA's "further application").

For a trained model, lists per clip the time spans (1-s segments) where an
event is both heard and seen, i.e. the runs of the model's segment-level
audio AND visual decisions:

  python -m avjax.projects.veba.spans --config=configs/veba.py --workdir=DIR \
      --split=test --out=/tmp/spans.json
  python -m avjax.projects.veba.spans --config=configs/veba.py --workdir=DIR \
      --pred=DIR/pred_test.npz          # reuse saved predictions

Without --pred the checkpoint (--checkpoint, default best) is evaluated on
--split first (the trainer's `evaluate_checkpoint`, which writes
DIR/pred_<split>.npz). Prints one line per span (`clip event onset-offset
score`, score = mean sqrt(p_a^t p_v^t) over the span) and, where the split
has dense labels, how many predicted spans match a true audio-visual span
at IoU >= 0.5. --out writes {clip_id: [{"event", "onset", "offset",
"score"}]} as JSON.
"""

import json
import os

from absl import app
from absl import flags
from ml_collections import config_flags
import numpy as np

from avjax.data import datasets
from avjax.data import tfrecord
from avjax.evaluators import veba as veba_eval
from avjax.metrics import avvp
from avjax.utils import cli
from avjax.utils import runtime

def define_flags():
  """Command-line flags (defined by the command only, not on import)."""
  config_flags.DEFINE_config_file(
      "config", None, "The experiment config the workdir was trained with.",
      lock_config=True)
  flags.DEFINE_string("workdir", None, "Workdir of the trained model.")
  flags.DEFINE_string("split", "test", "Split to parse.")
  flags.DEFINE_string("checkpoint", "best", "'best', 'latest' or a step.")
  flags.DEFINE_string("pred", None, "Saved pred_<split>.npz (skips the "
                      "evaluation).")
  flags.DEFINE_string("out", None, "Write the spans to this JSON file.")
  flags.DEFINE_integer("max_lines", 50, "Print at most this many spans "
                       "(0: all).")
  flags.mark_flags_as_required(["config", "workdir"])


def spans_from_predictions(pred, classes):
  """{clip_id: spans} from a pred_<split>.npz mapping."""
  fp = pred["frame_prob"]
  score = np.sqrt(fp[:, :, 0] * fp[:, :, 1])
  return veba_eval.sync_spans(pred["audio"], pred["visual"],
                              [str(i) for i in pred["ids"]], classes, score)


def span_match(pred, truth_audio, truth_visual):
  """(matched, predicted, true) audio-visual spans (event level, IoU>=.5)."""
  both = lambda a, v: (np.asarray(a) > 0) & (np.asarray(v) > 0)
  p, t = both(pred["audio"], pred["visual"]), both(truth_audio, truth_visual)
  tp, fp, fn = avvp._event_counts(  # pylint: disable=protected-access
      p.transpose(1, 0, 2).reshape(p.shape[1], -1),
      t.transpose(1, 0, 2).reshape(t.shape[1], -1))
  return int(tp.sum()), int(tp.sum() + fp.sum()), int(tp.sum() + fn.sum())


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  fv = flags.FLAGS
  runtime.initialize()
  config = fv.config
  path = fv.pred or os.path.join(fv.workdir, f"pred_{fv.split}.npz")
  if not fv.pred:
    from avjax.trainers import registry  # pylint: disable=g-import-not-at-top
    registry.get(config.trainer).evaluate_checkpoint(
        config, fv.workdir, fv.checkpoint, splits=[fv.split])
  pred = dict(np.load(path))
  data_dir = datasets.resolve(config.data)
  info = tfrecord.read_info(data_dir)
  spans = spans_from_predictions(pred, info["classes"])
  lines = [f"{cid} {s['event']} {s['onset']}-{s['offset']} {s['score']:.3f}"
           for cid, ss in spans.items() for s in ss]
  shown = lines if not fv.max_lines else lines[:fv.max_lines]
  print("\n".join(shown))
  n_clips = sum(bool(s) for s in spans.values())
  print(f"{len(lines)} audio-visual spans in {n_clips} of {len(spans)} clips"
        + (f" ({len(lines) - len(shown)} not shown)"
           if len(shown) < len(lines) else ""))
  dense = _dense_labels(data_dir, info, fv.split, pred["ids"])
  if dense is not None:
    tp, n_pred, n_true = span_match(pred, *dense)
    print(f"{tp} of {n_pred} predicted spans match one of {n_true} true "
          "audio-visual spans (IoU >= 0.5)")
  if fv.out:
    with open(fv.out, "w") as f:
      json.dump(spans, f, indent=1)
    print(f"wrote {fv.out}")


def _dense_labels(data_dir, info, split, ids):
  """seg_audio / seg_visual [N, T, C] in the order of `ids`, or None."""
  from avjax import prepare  # pylint: disable=g-import-not-at-top
  if "seg_audio" not in info["splits"][split]["label_keys"]:
    return None
  clips = {c["id"]: c for c in prepare.read_clips(data_dir, split)}
  t = max(len(c["seg_audio"]) for c in clips.values())
  pad = lambda x: np.pad(x, ((0, t - len(x)), (0, 0)))
  return tuple(np.stack([pad(clips[str(i)][k]) for i in ids])
               for k in ("seg_audio", "seg_visual"))


if __name__ == "__main__":
  define_flags()
  cli.run(main)
