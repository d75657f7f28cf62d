r"""VEBA Fig. 5: scores vs the proportion of clips with video labels.

  python -m avjax.sweep --config=configs/veba.py --hyper=fig5 --workdir=DIR
  python -m avjax.projects.veba.curve --sweep=DIR      # -> DIR/fig5.png, DIR/fig5.md

Reads the sweep's table.json (rows `vfrac_NNN`, NNN = percent), plots the
audio-visual (and video) segment- and event-level F-scores and tagging mAP
against the proportion with matplotlib (Agg), and writes the same numbers as
a markdown table.
"""

import json
import os
import re
from typing import Dict, List, Tuple

from absl import app
from absl import flags

from avjax.utils import cli


def define_flags():
  """Command-line flags (defined by the command only, not on import)."""
  flags.DEFINE_string("sweep", None, "Sweep workdir holding table.json.")
  flags.DEFINE_string("out", None, "PNG path (default: SWEEP/fig5.png).")
  flags.DEFINE_list("keys", ["seg_av", "ev_av", "seg_v", "ev_v", "map_v",
                             "map_av"], "Metrics to plot (the paper: seg_av, "
                    "ev_av).")
  flags.mark_flag_as_required("sweep")


def curve(rows: Dict[str, Dict[str, float]]
          ) -> List[Tuple[int, Dict[str, float]]]:
  """[(percent, metrics)] of the vfrac_NNN rows, by percent."""
  out = [(int(m.group(1)), r) for name, r in rows.items()
         for m in [re.fullmatch(r"vfrac_(\d+)", name)] if m]
  if not out:
    raise ValueError(f"no vfrac_NNN rows in {sorted(rows)}")
  return sorted(out, key=lambda x: x[0])


def markdown(points, keys) -> str:
  lines = ["| video labels % | " + " | ".join(keys) + " |",
           "|---|" + "---|" * len(keys)]
  lines += [f"| {p} | " + " | ".join(f"{r[k]:.1f}" for k in keys) + " |"
            for p, r in points]
  return "\n".join(lines)


def plot(points, keys, path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  xs = [p for p, _ in points]
  for k in keys:
    ax.plot(xs, [r[k] for _, r in points], marker="o",
            linestyle="-" if k.endswith("av") else "--", label=k)
  ax.set_xlabel("clips with video labels (%)")
  ax.set_ylabel("score (%)")
  ax.set_xticks(xs)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, ncol=2)
  ax.set_title("VEBA Fig. 5: video-label proportion (synthetic)")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  fv = flags.FLAGS
  with open(os.path.join(fv.sweep, "table.json")) as f:
    points = curve(json.load(f)["rows"])
  out = fv.out or os.path.join(fv.sweep, "fig5.png")
  plot(points, fv.keys, out)
  md = markdown(points, fv.keys)
  with open(os.path.splitext(out)[0] + ".md", "w") as f:
    f.write(md + "\n")
  print(md)
  print(f"wrote {out}")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
