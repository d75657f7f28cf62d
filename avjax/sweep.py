r"""Runs the rows of a paper table and writes it as markdown.

  python -m avjax.sweep --config=configs/avvp_ma.py --hyper=table2 \
      --workdir=/tmp/avjax/ma_table2
  python -m avjax.sweep --config=configs/avvp_han.py --workdir=/tmp/han_tab \
      --runlocal   # one-minute rows, to check the plumbing

The config file's `get_hyper(hyper)` lists the rows: dicts with "config"
("configs/x.py:args") and optionally "name" (the row label and subfolder),
"overrides" ({"dotted.field": value}), and "workdir" + "stage" to report one
stage of a multi-stage run that another row trains anyway (e.g. MA's
baseline is exactly stage 1 of its +R pipeline: {"workdir": "+R", "stage":
"stage1"} reads `results.json["stages"]["stage1"]` of that run). Each row trains in
WORKDIR/<name> with its config's trainer; a row whose results.json exists is
read instead of rerun, so an interrupted sweep resumes at the row it was on
(and the row itself resumes from its checkpoint). Writes WORKDIR/table.md
and WORKDIR/table.json: the rows' scores on --split (default: the config's
test split), columns from the first row config's `table_keys` or --keys.
A row may carry "paper": {metric key: the number the paper prints for it, in
avjax's units}; each key some row has one for gets a `paper <key>` column
right after the measured one ("-" where the paper has none), and table.json
keeps them under the row's "paper" (--dry_run lists them too).

--shard=K/N splits a sweep over N workers (processes, machines) sharing one
WORKDIR: worker K trains rows K, K+N, K+2N, ... and tabulates what is done so
far; a last run without --shard reads every row and writes the whole table.
A row being trained holds WORKDIR/<name>/.sweep_lock (host and pid): another
sweep on the same host leaves that row alone while the process lives (e.g.
the unsharded run started before a shard finished) and takes a dead
process's lock over (the row resumes from its checkpoint). A lock from
another host cannot be checked: it is reported and the row trained anyway.
Single-process sweeps only (in a multi-host sweep every process trains every
row together, so none locks).
"""

import contextlib
import errno
import importlib
import json
import os
import re
import socket
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import jax

from avjax.trainers import registry as trainers
from avjax.utils import cli
from avjax.utils import runtime
from avjax.utils import writers


def define_flags():
  """The command's flags (defined when run, not on import)."""
  flags.DEFINE_string("config", None, "Config file with get_hyper(), e.g. "
                      "configs/avvp_ma.py")
  flags.DEFINE_string("hyper", None, "Argument of get_hyper (the table name).")
  flags.DEFINE_string("workdir", None, "Sweep directory; one subfolder a row.")
  flags.DEFINE_bool("runlocal", False, "Append `runlocal` to every row's config "
                    "argument (tiny, fast rows).")
  flags.DEFINE_list("keys", None, "Metric columns (default: the config's "
                    "table_keys, else every metric of the first row).")
  flags.DEFINE_string("split", None, "Split to tabulate (default: the test "
                      "split of each row's config).")
  flags.DEFINE_bool("dry_run", False, "Only list the rows and their configs.")
  flags.DEFINE_string("shard", None, "K/N: train only rows K, K+N, ... (one of "
                      "N workers on a shared --workdir); others are read if "
                      "done, else left out of this table.")


def parse_shard(spec: Optional[str]) -> Optional[Tuple[int, int]]:
  """'K/N' -> (K, N) with 0 <= K < N; None -> None."""
  if not spec:
    return None
  m = re.fullmatch(r"(\d+)/(\d+)", spec.strip())
  if not m or not int(m.group(1)) < int(m.group(2)):
    raise ValueError(f"--shard={spec!r}: expected K/N with 0 <= K < N, "
                     "e.g. 0/2")
  return int(m.group(1)), int(m.group(2))


def _module(path: str):
  """configs/x.py -> the imported module configs.x."""
  mod = os.path.splitext(os.path.normpath(path))[0].replace(os.sep, ".")
  return importlib.import_module(mod)


def load_config(spec: str, runlocal: bool = False,
                overrides: Optional[Dict[str, Any]] = None):
  """'configs/x.py:a=1,b' -> the locked ConfigDict get_config returns."""
  path, _, arg = spec.partition(":")
  if runlocal and "runlocal" not in arg.split(","):
    arg = ",".join(filter(None, [arg, "runlocal"]))
  config = _module(path).get_config(arg or None)
  for key, value in (overrides or {}).items():
    *path, leaf = key.split(".")
    parent = config
    for part in path:
      parent = parent[part]
    if leaf not in parent:
      raise KeyError(f"override {key!r}: {spec} has no such field")
    parent[leaf] = value
  config.lock()
  return config


def row_name(row: Dict[str, Any]) -> str:
  if row.get("name"):
    return row["name"]
  _, _, arg = row["config"].partition(":")
  return re.sub(r"[^A-Za-z0-9_.=-]+", "_", arg) or "default"


def rows_of(config_path: str, hyper: Optional[str]) -> List[Dict[str, Any]]:
  mod = _module(config_path)
  if not hasattr(mod, "get_hyper"):
    raise ValueError(f"{config_path} has no get_hyper(); nothing to sweep")
  rows = list(mod.get_hyper(hyper))
  names = [row_name(r) for r in rows]
  dup = {n for n in names if names.count(n) > 1}
  if dup:
    raise ValueError(f"{config_path} get_hyper({hyper!r}): duplicate row "
                     f"names {sorted(dup)}; give rows a 'name'")
  return rows


def run_row(row: Dict[str, Any], workdir: str, runlocal: bool,
            train: bool = True) -> Optional[Dict[str, Any]]:
  """Trains one row (or reads its finished results.json); with train=False
  an unfinished row is None."""
  done = os.path.join(workdir, "results.json")
  if os.path.exists(done):
    with open(done) as f:
      return json.load(f)
  if not train:
    return None
  config = load_config(row["config"], runlocal, row.get("overrides"))
  trainer = trainers.get(config.trainer)
  with row_lock(workdir) as held_by:
    if held_by:
      writers.log("sweep row %s: being trained by %s, left to it",
                  os.path.basename(workdir), held_by)
      return None
    writers.log("sweep row %s: %s", os.path.basename(workdir), row["config"])
    return trainer.train_and_evaluate(config, workdir)


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except OSError as e:
    return e.errno == errno.EPERM
  return True


@contextlib.contextmanager
def row_lock(workdir: str):
  """Holds WORKDIR/.sweep_lock while the block runs; yields None when held
  (released after), else "pid P on host H" of the live process on this
  host that holds it (nothing taken). A dead holder's lock is taken over;
  another host's is reported and taken over. No lock with several JAX
  processes."""
  if jax.process_count() > 1:
    yield None
    return
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, ".sweep_lock")
  me = {"host": socket.gethostname(), "pid": os.getpid()}
  while True:
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
      try:
        with open(path) as f:
          other = json.load(f)
      except FileNotFoundError:
        continue  # released meanwhile
      except ValueError:  # being written; empty for long: its writer died
        if time.time() - os.path.getmtime(path) < 10:
          time.sleep(0.05)
          continue
        other = {}
      holder = f"pid {other.get('pid')} on host {other.get('host')}"
      if (other.get("host") == me["host"] and isinstance(other.get("pid"), int)
          and _alive(other["pid"])):
        yield holder
        return
      if other.get("host") not in (None, me["host"]):
        writers.log("sweep: %s is held by %s (cannot check another host); "
                    "training the row anyway", path, holder)
      with contextlib.suppress(FileNotFoundError):
        os.remove(path)
      continue
    with os.fdopen(fd, "w") as f:
      json.dump(me, f)
    break
  try:
    yield None
  finally:
    with contextlib.suppress(FileNotFoundError):
      os.remove(path)


def _fmt(v) -> str:
  return f"{v:.1f}" if isinstance(v, float) else str(v)


def _published(v) -> str:
  """A published number as the paper prints it (one decimal, two where it
  has them, e.g. VEBA's 38.25); "-" for none."""
  if v is None:
    return "-"
  return f"{v:.1f}" if round(v, 1) == v else f"{v:.2f}"


def paper_of(row: Dict[str, Any]) -> Dict[str, float]:
  """The row's published numbers {metric key: value} (its "paper"), or {}."""
  return dict(row.get("paper") or {})


def table(rows: Dict[str, Dict[str, float]], keys: Sequence[str],
          paper: Optional[Dict[str, Dict[str, float]]] = None) -> str:
  """Markdown: one line a row, one column a metric key. With paper ({row
  name: {key: published value}}), every key that some row has a published
  number for gets a `paper <key>` column right after its own ("-" where the
  paper has none)."""
  paper = paper or {}
  cols = []  # (header, row name -> value)
  for k in keys:
    cols.append((k, lambda name, k=k: rows[name].get(k, "-")))
    if any(k in p for p in paper.values()):
      cols.append((f"paper {k}",
                   lambda name, k=k: _published(paper.get(name, {}).get(k))))
  lines = ["| row | " + " | ".join(h for h, _ in cols) + " |",
           "|---|" + "---|" * len(cols)]
  for name in rows:
    lines.append(f"| {name} | " + " | ".join(
        _fmt(get(name)) for _, get in cols) + " |")
  return "\n".join(lines)


def sweep(config_path: str, hyper: Optional[str], workdir: str,
          runlocal: bool = False, keys: Optional[Sequence[str]] = None,
          split: Optional[str] = None,
          shard: Optional[Tuple[int, int]] = None
          ) -> Dict[str, Dict[str, float]]:
  """Runs every row (or shard=(K, N)'s share); returns {row name: metrics on
  the split} of the rows done."""
  rows = rows_of(config_path, hyper)
  scores, paper = {}, {}
  for i, row in enumerate(rows):
    name = row_name(row)
    if paper_of(row):
      paper[name] = paper_of(row)
    mine = shard is None or i % shard[1] == shard[0]
    if row.get("stage"):  # another row trains it; its shard owns it
      mine = mine and shard is None
    summary = run_row(row, os.path.join(workdir, row.get("workdir", name)),
                      runlocal, train=mine)
    if summary is None:
      if not mine:
        writers.log("sweep row %s: left to another shard, not done yet", name)
      continue
    if row.get("stage"):
      summary = summary["stages"][row["stage"]]
    config = load_config(row["config"], runlocal, row.get("overrides"))
    sp = split or config.data.test_split
    if sp not in summary.get("results", {}):
      raise KeyError(f"row {name}: results.json has no split {sp!r} "
                     f"(has {sorted(summary.get('results', {}))})")
    scores[name] = summary["results"][sp]
    if keys is None:
      keys = list(config.table_keys or scores[name])
  if jax.process_index() == 0:
    md = table(scores, keys or [], paper)
    title = f"{config_path} {hyper or ''} ({split or 'test'} split)"
    with open(os.path.join(workdir, "table.md"), "w") as f:
      f.write(f"# {title}\n\n{md}\n")
    writers.write_json(os.path.join(workdir, "table.json"),
                       {"config": config_path, "hyper": hyper,
                        "rows": {n: ({**r, "paper": paper[n]}
                                     if n in paper else r)
                                 for n, r in scores.items()}})
    writers.log("\n" + md)
  return scores


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  if f.dry_run:
    for row in rows_of(f.config, f.hyper):
      published = ", ".join(f"{k}={_published(v)}"
                            for k, v in paper_of(row).items())
      print(f"{row_name(row)}: {row['config']} {row.get('overrides', '')}"
            + (f" paper: {published}" if published else ""))
    return
  if not f.workdir:
    raise app.UsageError("--workdir is required")
  runtime.initialize()
  os.makedirs(f.workdir, exist_ok=True)
  sweep(f.config, f.hyper, f.workdir, f.runlocal, f.keys, f.split,
        parse_shard(f.shard))


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["config"])
  cli.run(main)
