"""Tables 1-4 of the event-specific fusion layers paper from trained runs.

  python -m avjax.projects.event_heads.analyze --workdir=SWEEP --out=DIR [--split=test]

SWEEP holds the row workdirs of `python -m avjax.sweep
--config=configs/event_heads.py --hyper=table1` (five_heads, audio_only,
visual_only, naive_av; other names via --model/--baselines), each with
results.json and pred_<split>.npz. Writes into DIR:

  table1.md  single-label accuracy: audio only, vision only, naive AV, ours
  table2.md  multi-label F1: ours (union of head top-1s) vs naive AV Top-K
  table3.md  head complementarity: clips only one of continuous / instant /
             onset gets right, and (instant or onset) and not continuous
  table4.md  categories assigned to each head (majority over the clips of the
             class of the head with the highest log p_i(y) on the true class
             y; --dominant_score=logit compares the raw outputs O_{i,y}, the
             paper's literal rule; =relative subtracts each head's mean
             log p_i on the true labels of all clips, not the paper's rule);
             the per-class assignment; when the dataset
             records true event types (synthetic_events), the confusion true
             type x assigned head and the fraction recovered, the recovery
             under the other scores, and each head's accuracy and mean
             log p_i(y) per true type (its most accurate head: the type's
             specialist)
  analysis.json  all of the above; confusion.png (if matplotlib is installed)

A table whose runs are missing is skipped with a message.
"""

import json
import os
from typing import Dict, Optional

from absl import app
from absl import flags
import numpy as np

from avjax.data import tfrecord
from avjax.metrics import event_heads as metrics
from avjax.models import event_heads as model_lib
from avjax.utils import cli


def define_flags():
  """The command's flags (defined when run, not on import)."""
  flags.DEFINE_string("workdir", None, "Sweep directory with one folder a row.")
  flags.DEFINE_string("out", None, "Output directory for the tables.")
  flags.DEFINE_string("split", "test", "Split to analyse.")
  flags.DEFINE_string("model", "five_heads", "Row of the five-head model.")
  flags.DEFINE_list("baselines", ["audio_only", "visual_only", "naive_av"],
                    "Rows of the audio-only, visual-only and naive-AV models.")
  flags.DEFINE_string("dataset", None, "Dataset label of the table rows "
                      "(default: the dataset's name).")
  flags.DEFINE_enum("dominant_score", "logprob", metrics.DOMINANT_SCORES,
                    "Table 4 per-clip score: the heads' log-softmax on the "
                    "true class, their raw outputs O_{i,y} (the paper's "
                    "literal rule), or the log-softmax minus each head's "
                    "mean log p_i on the true labels of all clips.")
  flags.mark_flags_as_required(["workdir", "out"])


def load_run(workdir: str, split: str) -> Optional[Dict]:
  """results.json and pred_<split>.npz of a row, or None if missing."""
  res_path = os.path.join(workdir, "results.json")
  pred_path = os.path.join(workdir, f"pred_{split}.npz")
  if not (os.path.exists(res_path) and os.path.exists(pred_path)):
    return None
  with open(res_path) as f:
    res = json.load(f)
  with np.load(pred_path) as z:
    pred = {k: z[k] for k in z.files}
  return {"results": res, "pred": pred,
          "scores": res["results"].get(split, {})}


def md_table(header, rows) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
  return "\n".join(lines) + "\n"


def table1(name: str, runs: Dict, model: str, baselines) -> str:
  cols = list(baselines) + [model]
  cells = [f"{runs[c]['scores']['acc']:.1f}" if runs.get(c) else "-"
           for c in cols]
  return md_table(["Dataset", "Audio Only", "Vision Only", "Naive AV",
                   "Ours"], [[name] + cells])


def table2(name: str, ours: Dict, naive: Optional[Dict]) -> str:
  rows = []
  for label, key in (("F1 (micro)", "f1"), ("F1 (per clip)", "f1s")):
    r = [f"{name} {label}", f"{ours['scores'][key + '_union']:.1f}"]
    for k in metrics.TOP_K:
      v = naive["scores"].get(f"{key}_top{k}") if naive else None
      r.append("-" if v is None else f"{v:.1f}")
    rows.append(r)
  card = ours["scores"]["card_union"]
  text = md_table(["Dataset", "Ours"] + [f"Naive AV Top-{k}"
                                         for k in metrics.TOP_K], rows) + (
      f"\nOurs predicts {card:.2f} labels per clip on average (truth: "
      f"{ours['scores']['card_labels']:.2f}).\n")
  boot = bootstrap_vs_top_k(ours, naive) if naive else {}
  if boot:
    n = len(ours["pred"]["labels"])
    text += (f"\nOurs - Naive AV Top-K, micro F1, with a 95% paired "
             f"bootstrap interval over the {n} clips "
             f"({int(next(iter(boot.values()))['num_samples'])} resamples; "
             f"P = fraction of resamples where ours wins):\n\n" + md_table(
                 ["K", "difference", "95% interval", "P(ours wins)"],
                 [[k, f"{b['diff']:+.1f}", f"[{b['lo']:+.1f}, {b['hi']:+.1f}]",
                   f"{b['p_a_wins']:.2f}"] for k, b in boot.items()]))
  return text, boot


def bootstrap_vs_top_k(ours: Dict, naive: Dict) -> Dict[int, Dict]:
  """{K: metrics.paired_bootstrap_f1(union of ours, Top-K of naive)}, on
  the same clips (their ids must match, in order)."""
  po, pn = ours["pred"], naive["pred"]
  if "ids" in po and "ids" in pn and not np.array_equal(po["ids"],
                                                        pn["ids"]):
    raise ValueError("five-head and naive-AV predictions are on different "
                     "clips (pred_<split>.npz field 'ids' differs)")
  heads = [str(h) for h in po["heads"]]
  union = metrics.union(po["logits"], valid_of(po, heads))
  mean_p = metrics.softmax(pn["logits"]).mean(1)
  return {k: metrics.paired_bootstrap_f1(
      union, metrics.top_k(mean_p, k), po["labels"])
          for k in metrics.TOP_K if k <= mean_p.shape[-1]}


def primary_of(pred: Dict) -> Optional[np.ndarray]:
  return pred.get("primary_labels")


def valid_of(pred: Dict, heads) -> np.ndarray:
  return metrics.head_valid(heads, pred.get("onset_sel"), len(pred["logits"]))


def table3(name: str, ours: Dict) -> (str, Dict):
  p = ours["pred"]
  heads = [str(h) for h in p["heads"]]
  counts = metrics.complementarity(p["logits"], p["labels"], primary_of(p),
                                   heads, valid_of(p, heads))
  keys = ["continuous", "instant", "onset", "(ins|ons)&~cont"]
  return md_table(["Dataset", "Continuous", "Instant", "Onset",
                   "(Ins. or Ons.) and not Cont."],
                  [[name] + [counts[k] for k in keys]]), counts


def table4(name: str, ours: Dict, info: Dict, score: str = "logprob"):
  p = ours["pred"]
  heads = [str(h) for h in p["heads"]]
  assigned, votes = metrics.dominant_types(p["logits"], p["labels"],
                                           primary_of(p), heads, score,
                                           valid_of(p, heads))
  classes = info["classes"]
  per_head = [int((assigned == i).sum()) for i in range(len(heads))]
  text = md_table(["Dataset"] + [h.capitalize() for h in heads] + ["Total"],
                  [[name] + per_head + [int((assigned >= 0).sum())]])
  truth = info.get("extra", {}).get("event_types")
  rows = []
  for c, cls in enumerate(classes):
    share = votes[c] / max(votes[c].sum(), 1)
    rows.append([cls] + ([truth[c]] if truth else []) + [
        heads[assigned[c]] if assigned[c] >= 0 else "-"] +
                [f"{100 * s:.0f}%" for s in share])
  text += (f"\nPer class (share of its clips whose best head by {score} is "
           "each head):\n\n")
  text += md_table(["Class"] + (["True type"] if truth else []) +
                   ["Assigned"] + heads, rows)
  out = {"heads": heads, "score": score,
         "assigned": [heads[a] if a >= 0 else None for a in assigned],
         "votes": votes.tolist(), "per_head": dict(zip(heads, per_head))}
  if truth:
    types = list(model_lib.HEADS)
    conf = np.zeros((len(types), len(heads)), np.int64)
    for c in range(len(classes)):
      if assigned[c] >= 0:
        conf[types.index(truth[c]), assigned[c]] += 1
    ok = sum(int(conf[types.index(h), j]) for j, h in enumerate(heads)
             if h in types)
    text += ("\nConfusion (rows: true event type, columns: assigned head; "
             f"{ok}/{int(conf.sum())} classes recovered):\n\n")
    text += md_table(["True \\ assigned"] + heads,
                     [[t] + list(conf[i]) for i, t in enumerate(types)])
    out.update(confusion=conf.tolist(), types=types, recovered=ok,
               num_classes=int(conf.sum()))
    prof = metrics.head_profile(p["logits"], p["labels"], primary_of(p),
                                [types.index(t) for t in truth], len(types),
                                valid_of(p, heads))
    spec = [heads[j] if j >= 0 else "-" for j in prof["specialist"]]
    hits = sum(s == t for s, t in zip(spec, types))
    text += ("\nEach head on the clips of each true type: accuracy % / mean "
             "log p_i(y) (the most accurate head is the type's specialist; "
             f"{hits}/{len(types)} types have their own head as "
             "specialist):\n\n")
    text += md_table(
        ["True type", "Clips"] + heads + ["Specialist"],
        [[t, int(prof["clips"][i])] +
         [f"{prof['acc'][i, j]:.1f} / {prof['logp'][i, j]:.2f}"
          for j in range(len(heads))] + [spec[i]]
         for i, t in enumerate(types)])
    out.update(profile={"acc": prof["acc"].tolist(),
                        "logp": prof["logp"].tolist(),
                        "clips": prof["clips"].tolist(),
                        "specialist": spec}, specialists_recovered=hits)
  return text, out


def plot(out_dir: str, t4: Dict) -> Optional[str]:
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  conf = np.asarray(t4.get("confusion", []))
  if not conf.size:
    return None
  fig, ax = plt.subplots(figsize=(5, 4))
  ax.imshow(conf, cmap="Blues")
  ax.set_xticks(range(len(t4["heads"])), t4["heads"], rotation=30)
  ax.set_yticks(range(len(t4["types"])), t4["types"])
  for (i, j), v in np.ndenumerate(conf):
    ax.text(j, i, str(v), ha="center", va="center",
            color="w" if v > conf.max() / 2 else "k")
  ax.set_xlabel("assigned head (Table 4 rule)")
  ax.set_ylabel("true event type")
  ax.set_title(f"{t4['recovered']}/{t4['num_classes']} classes recovered")
  fig.tight_layout()
  path = os.path.join(out_dir, "confusion.png")
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def analyze(workdir: str, out_dir: str, split: str = "test",
            model: str = "five_heads",
            baselines=("audio_only", "visual_only", "naive_av"),
            dataset: Optional[str] = None,
            dominant_score: str = "logprob") -> Dict:
  """Writes the tables; returns everything as a dict (also analysis.json)."""
  os.makedirs(out_dir, exist_ok=True)
  runs = {r: load_run(os.path.join(workdir, r), split)
          for r in list(baselines) + [model]}
  missing = [r for r, v in runs.items() if v is None]
  if missing:
    print(f"missing runs (no results.json / pred_{split}.npz): {missing}")
  ours = runs[model]
  result = {"split": split, "missing": missing}
  info = None
  if ours:
    info = tfrecord.read_info(ours["results"]["data_dir"])
  name = dataset or (info or {}).get("name", "dataset")
  tables = {"table1.md": table1(name, runs, model, baselines)}
  result["table1"] = {r: v["scores"].get("acc") for r, v in runs.items() if v}
  if ours:
    tables["table2.md"], boot = table2(name, ours, runs.get(baselines[-1]))
    heads = [str(h) for h in ours["pred"]["heads"]]
    if all(h in heads for h in ("continuous", "instant", "onset")):
      tables["table3.md"], result["table3"] = table3(name, ours)
    tables["table4.md"], result["table4"] = table4(name, ours, info,
                                                   dominant_score)
    if "recovered" in result["table4"]:
      for other in metrics.DOMINANT_SCORES:
        if other == dominant_score:
          continue
        _, alt = table4(name, ours, info, other)
        result["table4_" + other] = alt
        tables["table4.md"] += (
            f"\nWith score={other}: {alt['recovered']}/{alt['num_classes']} "
            f"classes recovered; per head {alt['per_head']}.\n")
    result["table2"] = {
        "ours": ours["scores"]["f1_union"],
        "naive": {k: runs[baselines[-1]]["scores"].get(f"f1_top{k}")
                  for k in metrics.TOP_K} if runs.get(baselines[-1]) else {},
        "bootstrap": {str(k): b for k, b in boot.items()}}
  for fname, text in tables.items():
    with open(os.path.join(out_dir, fname), "w") as f:
      f.write(text)
    print(f"== {fname}\n{text}")
  if "table4" in result:
    result["plot"] = plot(out_dir, result["table4"])
  with open(os.path.join(out_dir, "analysis.json"), "w") as f:
    json.dump(result, f, indent=1)
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  fl = flags.FLAGS
  analyze(fl.workdir, fl.out, fl.split, fl.model, fl.baselines, fl.dataset,
          fl.dominant_score)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
