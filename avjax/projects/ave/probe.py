"""Linear probes of the synthetic AVE generator, for choosing its settings.

  python -m avjax.projects.ave.probe --split=val \
      --grid='max_box=3,4,5;distractor_box=2,3;distractor_amp=0.3,0.5,0.8'

For every setting of the grid (a product of `SyntheticAVEConfig` fields over
the default) this generates `--num_train` train clips and `--num_eval` clips
of `--split` and fits a ridge classifier per segment (29 classes, train
clips only) on: A (audio), V (the mean of the 7x7 map, i.e. global average
pooling: Table 1's V), Vobj (the mean over the sounding object's true cells:
an oracle attention, an upper bound for V-att), AV and AVobj; plus a linear
CCA of (audio, pooled visual) event segments scored by Table 3's exact-match
protocol (`lcca_a2v`/`lcca_v2a` against `chance_cml`). Scores are on the
eval split; choose settings on `val` (the default) and keep `test` for the
tables.

`select` applies a rule fixed from the paper's Table 1 pattern before
looking at any scores: among settings where the oracle attention gains at
least `min_att_gain` points over pooling (V-att > V; the paper: +3.3) and
joint features beat either one (AV > max(A, V)), take the one whose pooled
V is closest to the paper's V (55.3 %: global pooling keeps the class in
real AVE). Writes OUT/probe.md (one row a setting, the pick marked) and
OUT/probe.json when --out is given.
"""

import itertools
import json
import os
from typing import Any, Dict, List, Optional, Sequence

from absl import app
from absl import flags
import numpy as np

from avjax.data.synthetic import ave as sa
from avjax.losses import cca
from avjax.metrics import ave as ave_metrics
from avjax.utils import cli

PAPER_V = 55.3  # Table 1, V (global average pooling), AVE test accuracy %.
PAPER_ATT_GAIN = 3.3  # Table 1, V-att - V.
ROWS = (("A", ("audio",)), ("V", ("pooled",)), ("Vobj", ("object",)),
        ("AV", ("audio", "pooled")), ("AVobj", ("audio", "object")))


def define_flags():
  """The command's flags (defined when run, not on import)."""
  flags.DEFINE_string("grid", "", "';'-separated field=v1,v2,... of "
                      "SyntheticAVEConfig (empty: the default alone).")
  flags.DEFINE_string("base", "{}", "JSON overrides under every setting.")
  flags.DEFINE_string("split", "val", "Split scored: val (for choosing) or "
                      "test.")
  flags.DEFINE_integer("num_train", 300, "Train clips the probes fit on.")
  flags.DEFINE_integer("num_eval", 150, "Clips of --split scored.")
  flags.DEFINE_float("min_att_gain", PAPER_ATT_GAIN, "Selection: least "
                     "Vobj - V (points).")
  flags.DEFINE_string("out", "", "Folder for probe.md / probe.json.")


def features(cfg: sa.SyntheticAVEConfig, split: str, n: int
             ) -> Dict[str, np.ndarray]:
  """Per-clip streams of the first n clips of a split: audio [N, T, 128],
  pooled and object-region visual [N, T, 512], labels [N, T], event [N, T],
  bounds [N, 2] (start, end)."""
  out = {k: [] for k in ("audio", "pooled", "object", "labels", "event",
                         "bounds")}
  for i in range(n):
    clip, lay = sa.make_clip(cfg, split, i)
    vm = clip["visual_map"].reshape(cfg.num_segments, -1, 512)
    out["audio"].append(clip["audio"])
    out["pooled"].append(vm.mean(1))
    out["object"].append(vm[:, lay["object"].ravel()].mean(1))
    out["labels"].append(clip["seg_audio"].argmax(1))
    out["event"].append(lay["event"])
    out["bounds"].append((lay["start"], lay["end"]))
  return {k: np.asarray(v) for k, v in out.items()}


def ridge(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray,
          num_classes: int, lam: float = 10.0) -> np.ndarray:
  """Predicted classes of xte from a one-vs-all ridge fit on (xtr, ytr);
  features standardised with the train statistics, with a bias."""
  mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
  z = lambda x: np.concatenate([(x - mu) / sd, np.ones((len(x), 1))], 1)
  a, b = z(xtr), z(xte)
  w = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]),
                      a.T @ np.eye(num_classes)[ytr])
  return (b @ w).argmax(1)


def probe(cfg: sa.SyntheticAVEConfig, split: str = "val",
          num_train: int = 300, num_eval: int = 150) -> Dict[str, float]:
  """Probe accuracies (%) of one setting on `split` (fit on train)."""
  if split == "train":
    raise ValueError("the probes fit on train; score on val or test")
  tr, te = features(cfg, "train", num_train), features(cfg, split, num_eval)
  flat = lambda x: x.reshape(-1, x.shape[-1])
  ytr, yte = tr["labels"].ravel(), te["labels"].ravel()
  ev = te["event"].ravel()
  res = {"chance_bg": 100 * float((yte == len(sa.AVE_CLASSES)).mean())}
  for name, keys in ROWS:
    p = ridge(np.concatenate([flat(tr[k]) for k in keys], 1), ytr,
              np.concatenate([flat(te[k]) for k in keys], 1),
              len(sa.CLASSES))
    res[name] = 100 * float((p == yte).mean())
    res[name + "_ev"] = 100 * float((p == yte)[ev].mean())
  pos = tr["event"]
  (ma, wa), (mv, wv) = cca.fit_cca(tr["audio"][pos], tr["pooled"][pos], 8)
  ea, evv = (te["audio"] - ma) @ wa, (te["pooled"] - mv) @ wv
  d = np.sqrt(((ea[:, :, None] - evv[:, None]) ** 2).sum(-1))
  r = ave_metrics.cross_modal_accuracy(d, te["bounds"][:, 0],
                                       te["bounds"][:, 1])
  res.update({"lcca_a2v": r["a2v"], "lcca_v2a": r["v2a"],
              "chance_cml": r["chance"]})
  return res


def _value(s: str) -> Any:
  for cast in (int, float):
    try:
      return cast(s)
    except ValueError:
      pass
  return s


def parse_grid(spec: str) -> List[Dict[str, Any]]:
  """'a=1,2;b=x' -> [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}]."""
  axes = []
  for part in filter(None, (p.strip() for p in spec.split(";"))):
    key, sep, vals = part.partition("=")
    if not sep or not vals:
      raise ValueError(f"grid axis {part!r}: want field=v1,v2,...")
    axes.append([(key.strip(), _value(v.strip())) for v in vals.split(",")])
  return [dict(c) for c in itertools.product(*axes)]


def select(rows: Sequence[Dict[str, Any]],
           min_att_gain: float = PAPER_ATT_GAIN) -> Optional[int]:
  """Index of the row the rule picks (see the module docstring), or None
  when no row is eligible. Rows carry the `probe` keys."""
  ok = [i for i, r in enumerate(rows)
        if r["Vobj"] - r["V"] >= min_att_gain and r["AV"] > max(r["A"],
                                                                r["V"])]
  return min(ok, key=lambda i: abs(rows[i]["V"] - PAPER_V)) if ok else None


def run(grid: Sequence[Dict[str, Any]], base: Dict[str, Any], split: str,
        num_train: int, num_eval: int, min_att_gain: float
        ) -> Dict[str, Any]:
  """Probes every setting; returns {"rows": [...], "pick": index}."""
  rows = []
  for setting in grid or [{}]:
    cfg = sa.SyntheticAVEConfig(**{**base, **setting})
    rows.append({"setting": setting,
                 **probe(cfg, split, num_train, num_eval)})
  return {"split": split, "base": base, "rows": rows,
          "pick": select(rows, min_att_gain)}


def markdown(result: Dict[str, Any]) -> str:
  keys = ["A", "V", "Vobj", "AV", "AVobj", "lcca_a2v", "chance_cml"]
  lines = [f"# ave_probe on {result['split']} (base {result['base']})", "",
           "| setting | " + " | ".join(keys) + " | pick |",
           "|---|" + "---|" * (len(keys) + 1)]
  for i, r in enumerate(result["rows"]):
    lines.append(f"| {json.dumps(r['setting'])} | " + " | ".join(
        f"{r[k]:.1f}" for k in keys) + (" | **pick** |" if i == result[
            "pick"] else " | |"))
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  result = run(parse_grid(f.grid), json.loads(f.base), f.split, f.num_train,
               f.num_eval, f.min_att_gain)
  md = markdown(result)
  print(md)
  if f.out:
    os.makedirs(f.out, exist_ok=True)
    with open(os.path.join(f.out, "probe.md"), "w") as fh:
      fh.write(md + "\n")
    with open(os.path.join(f.out, "probe.json"), "w") as fh:
      json.dump(result, fh, indent=1)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
