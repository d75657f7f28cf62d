"""Table 2 over seeds: mean ± sd per (stage, fusion) from a sweep's table.

  python -m avjax.sweep --config=configs/ave.py --hyper=table2_seeds \
      --workdir=DIR
  python -m avjax.ave_seeds --workdir=DIR   # -> DIR/table_seeds.md

Rows named "<stage>-<fusion> s<seed>" (configs/ave.py `table2_seeds`) are
grouped by "<stage>-<fusion>" (a name without " s<seed>", as in hyper
`table2`, counts as seed 0); each cell is the mean ± sample sd of --key
over the seeds (n in brackets when it is not the most common n), fusions
in the paper's order. A "late - early" line gives the mean of the
seed-paired differences and the number of seeds where late wins.
"""

import collections
import json
import os
import re
import statistics
from typing import Dict, List

from absl import app
from absl import flags

from avjax.models import ave_fusion

_ROW = re.compile(r"^(early|late|decision)-(\w+)(?: s(\d+))?$")
STAGES = ("early", "late", "decision")


def define_flags():
  """The command's flags (defined when run, not on import)."""
  flags.DEFINE_string("workdir", None, "Sweep folder with table.json.")
  flags.DEFINE_string("key", "acc", "Metric.")


def group(rows: Dict[str, Dict[str, float]], key: str = "acc"
          ) -> Dict[str, Dict[str, Dict[int, float]]]:
  """{fusion: {stage: {seed: value}}} of the rows named like _ROW."""
  out = collections.defaultdict(dict)
  for name, r in rows.items():
    m = _ROW.match(name)
    if m and key in r:
      out[m[2]].setdefault(m[1], {})[int(m[3] or 0)] = float(r[key])
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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  with open(os.path.join(f.workdir, "table.json")) as fh:
    rows = json.load(fh)["rows"]
  md = markdown(group(rows, f.key))
  print(md)
  with open(os.path.join(f.workdir, "table_seeds.md"), "w") as fh:
    fh.write(f"# Table 2 over seeds ({f.key}, mean ± sd)\n\n{md}\n")


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["workdir"])
  app.run(main)
