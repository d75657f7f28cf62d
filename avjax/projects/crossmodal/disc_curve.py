"""Modality-discriminator curve of adversarial cross-modal runs.

  python -m avjax.projects.crossmodal.disc_curve --workdirs=DIR1,DIR2 --labels=adv,no_reversal \
      --out=/tmp/disc.png

Reads each run's metrics.jsonl (`train/disc_acc`, `train/loss_disc`,
`train/grl_scale`, logged by `avvp_weak` with `loss.type="crossmodal"`),
prints a markdown table of them by step and, if matplotlib is installed,
plots discriminator accuracy and BCE against the step (chance: 0.5 and
ln 2).
"""

import math
from typing import Dict, List, Sequence

from absl import app
from absl import flags

from avjax.utils import cli
from avjax.utils import writers


def define_flags():
  """The command's flags (defined when run, not on import)."""
  flags.DEFINE_list("workdirs", None, "Workdirs of runs with a discriminator.")
  flags.DEFINE_list("labels", None, "Curve labels (default: the workdirs).")
  flags.DEFINE_string("out", "", "PNG path (optional).")
KEYS = ("disc_acc", "loss_disc", "grl_scale")


def read_curve(workdir: str) -> Dict[str, List[float]]:
  """{"step": [...], "disc_acc": [...], ...} from a run's metrics.jsonl."""
  rows = [r for r in writers.read_jsonl(workdir) if "train/disc_acc" in r]
  out = {"step": [r["step"] for r in rows]}
  for k in KEYS:
    out[k] = [r[f"train/{k}"] for r in rows]
  return out


def markdown(curves: Dict[str, Dict[str, List[float]]]) -> str:
  """One row a logged step, disc_acc / loss_disc / grl_scale per run."""
  names = list(curves)
  head = "| step | " + " | ".join(
      f"{n} acc | {n} BCE | {n} GRL" for n in names) + " |"
  lines = [head, "|---|" + "---|---|---|" * len(names)]
  steps = sorted({s for c in curves.values() for s in c["step"]})
  for s in steps:
    cells = []
    for n in names:
      c = curves[n]
      i = c["step"].index(s) if s in c["step"] else None
      cells += (["-"] * 3 if i is None else
                [f"{c['disc_acc'][i]:.3f}", f"{c['loss_disc'][i]:.3f}",
                 f"{c['grl_scale'][i]:.2f}"])
    lines.append(f"| {s} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def plot(curves, path: str) -> bool:
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
  for name, c in curves.items():
    ax1.plot(c["step"], c["disc_acc"], marker=".", label=name)
    ax2.plot(c["step"], c["loss_disc"], marker=".", label=name)
  ax1.axhline(0.5, color="gray", ls="--", lw=1, label="chance")
  ax2.axhline(math.log(2), color="gray", ls="--", lw=1, label="ln 2")
  ax1.set(xlabel="step", ylabel="discriminator accuracy", ylim=(0, 1.02))
  ax2.set(xlabel="step", ylabel="discriminator BCE")
  ax1.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  return True


def main(argv: Sequence[str]) -> None:
  del argv
  f = flags.FLAGS
  labels = f.labels or f.workdirs
  if len(labels) != len(f.workdirs):
    raise app.UsageError("--labels needs one label per workdir")
  curves = {l: read_curve(w) for l, w in zip(labels, f.workdirs)}
  print(markdown(curves))
  if f.out and plot(curves, f.out):
    print(f"wrote {f.out}")


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["workdirs"])
  cli.run(main)
