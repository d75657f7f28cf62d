"""Table 2 over seeds: mean ± sd per (stage, fusion) from a sweep's table.

  python -m avjax.sweep --config=configs/ave.py --hyper=table2_seeds \
      --workdir=DIR
  python -m avjax.projects.ave.seeds --workdir=DIR   # -> DIR/table_seeds.md

Rows named "<stage>-<fusion> s<seed>" (configs/ave.py `table2_seeds`) are
grouped by "<stage>-<fusion>" (a name without " s<seed>", as in hyper
`table2`, counts as seed 0). A setting tag between the two, as the
variant hypers write ("late-mrn vg30_n3200", "early-gmu lag1 s2"), picks
the rows of one setting: --tag=vg30_n3200 (default: the only tag in the
table; a table with several asks for one). Each cell is the mean ± sample sd of --key
over the seeds (n in brackets when it is not the most common n), fusions
in the paper's order. A "late - early" line gives the mean of the
seed-paired differences and the number of seeds where late wins. Also
writes the table as grouped bars (mean, sd whiskers, each seed a dot) to
table_seeds[_<tag>].png.
"""

import collections
import json
import os
import re
import statistics
from typing import Dict, List, Optional

from absl import app
from absl import flags

from avjax.models import ave_fusion
from avjax.utils import cli

_ROW = re.compile(r"^(early|late|decision)-(\w+)(?: (?!s\d+$)(\S+))?"
                  r"(?: s(\d+))?$")
STAGES = ("early", "late", "decision")


def define_flags():
  """The command's flags (defined when run, not on import)."""
  flags.DEFINE_string("workdir", None, "Sweep folder with table.json.")
  flags.DEFINE_string("key", "acc", "Metric.")
  flags.DEFINE_string("tag", None, "Setting tag of the rows to tabulate "
                      "(e.g. vg30_n3200; default: the only one present, "
                      "'' for untagged rows).")


def tags(rows) -> List[str]:
  """The setting tags of the Table 2 rows ('' for untagged rows)."""
  return sorted({m[3] or "" for m in map(_ROW.match, rows) if m})


def group(rows: Dict[str, Dict[str, float]], key: str = "acc",
          tag: str = "") -> Dict[str, Dict[str, Dict[int, float]]]:
  """{fusion: {stage: {seed: value}}} of the rows named like _ROW whose
  setting tag is `tag` ('' = untagged)."""
  out = collections.defaultdict(dict)
  for name, r in rows.items():
    m = _ROW.match(name)
    if m and (m[3] or "") == tag and key in r:
      out[m[2]].setdefault(m[1], {})[int(m[4] or 0)] = float(r[key])
  return dict(out)


def _cell(vals: List[float], n_common: int) -> str:
  if not vals:
    return "-"
  mean = statistics.fmean(vals)
  sd = f" ± {statistics.stdev(vals):.1f}" if len(vals) > 1 else ""
  n = f" (n={len(vals)})" if len(vals) != n_common else ""
  return f"{mean:.1f}{sd}{n}"


def markdown(g: Dict[str, Dict[str, Dict[int, float]]]) -> str:
  order = list(ave_fusion.NAMES)
  fusions = sorted(g, key=lambda f: (order.index(f) if f in order else
                                     len(order), f))
  ns = [len(s) for f in g.values() for s in f.values()]
  common = max(set(ns), key=ns.count) if ns else 0
  lines = ["| stage | " + " | ".join(fusions) + " |",
           "|---|" + "---|" * len(fusions)]
  for st in STAGES:
    if any(st in g[f] for f in fusions):
      lines.append(f"| {st} | " + " | ".join(
          _cell(list(g[f].get(st, {}).values()), common) for f in fusions)
                   + " |")
  diffs = []
  for f in fusions:
    e, l = g[f].get("early", {}), g[f].get("late", {})
    paired = sorted(set(e) & set(l))
    if not paired:
      diffs.append("-")
      continue
    d = [l[s] - e[s] for s in paired]
    wins = sum(x > 0 for x in d)
    diffs.append(f"{statistics.fmean(d):+.1f} ({wins}/{len(d)})")
  lines.append("| late - early (late wins) | " + " | ".join(diffs) + " |")
  return "\n".join(lines)


def plot(g: Dict[str, Dict[str, Dict[int, float]]], path: str,
         title: str) -> Optional[str]:
  """Grouped bars of `group`'s output: per fusion, one bar a stage (mean
  over seeds, sd whisker), each seed's value a dot. None without
  matplotlib or data."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  order = list(ave_fusion.NAMES)
  fusions = sorted(g, key=lambda f: (order.index(f) if f in order else
                                     len(order), f))
  stages = [st for st in STAGES if any(st in g[f] for f in fusions)]
  if not stages:
    return None
  width = 0.8 / len(stages)
  fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(fusions), 3.6))
  lo = min(v for f in fusions for s in g[f].values() for v in s.values())
  for k, st in enumerate(stages):
    xs, means, sds = [], [], []
    for i, f in enumerate(fusions):
      vals = list(g[f].get(st, {}).values())
      if not vals:
        continue
      x = i + (k - (len(stages) - 1) / 2) * width
      xs.append(x)
      means.append(statistics.fmean(vals))
      sds.append(statistics.stdev(vals) if len(vals) > 1 else 0.0)
      ax.plot([x] * len(vals), vals, "k.", ms=3, zorder=3)
    ax.bar(xs, means, width, yerr=sds, label=st, capsize=2)
  ax.set_xticks(range(len(fusions)), fusions, rotation=30, ha="right")
  ax.set_ylim(max(0.0, lo - 5.0), None)
  ax.set_ylabel("segment accuracy %")
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=8, ncol=len(stages))
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  with open(os.path.join(f.workdir, "table.json")) as fh:
    rows = json.load(fh)["rows"]
  present = tags(rows)
  tag = f.tag
  if tag is None:
    if len(present) > 1:
      raise app.UsageError(f"{f.workdir}/table.json has rows of several "
                           f"settings {present}: pass --tag=one of them")
    tag = present[0] if present else ""
  elif tag not in present:
    raise app.UsageError(f"--tag={tag!r}: no Table 2 rows with it in "
                         f"{f.workdir}/table.json (tags: {present})")
  g = group(rows, f.key, tag)
  md = markdown(g)
  print(md)
  title = f" [{tag}]" if tag else ""
  name = f"table_seeds_{tag}.md" if tag else "table_seeds.md"
  with open(os.path.join(f.workdir, name), "w") as fh:
    fh.write(f"# Table 2 over seeds{title} ({f.key}, mean ± sd)\n\n{md}\n")
  png = plot(g, os.path.join(
      f.workdir, name[:-3] + ".png"), f"Table 2{title}: {f.key} over seeds")
  if png:
    print(f"wrote {png}")


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["workdir"])
  cli.run(main)
