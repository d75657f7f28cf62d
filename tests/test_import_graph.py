"""The avjax-internal import graph follows the layering of issue 21.

  data -> models -> losses -> trainers -> evaluators -> projects / entry points

with `utils`, `errors` and `metrics` as leaf libraries below everything: a
module may import its own layer or a lower one, never a higher one. Every
import counts (also those inside functions); the graph is built from the
source with `ast`, nothing is imported. Trainers also do not import each
other, except the shared loop (`avjax.trainers.loop`, `train_lib`), and
evaluators import no trainer (they get a `predict_fn`; the loop reaches
evaluators by name through `config.eval.evaluator`, so trainer -> evaluator
imports are upward and caught by the layers).

  python tests/test_import_graph.py    # prints `module -> imports` per layer
"""

import ast
import os
import sys
from typing import Dict, List, Set, Tuple
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PACKAGE = os.path.join(ROOT, "avjax")

# Layer of each top-level part of the package (avjax.<part>); lower = lower.
LAYERS = {
    "avjax": 0, "utils": 0, "errors": 0, "metrics": 0,
    "data": 1,
    "models": 2,  # also models/extractors (ResNet, R(2+1)D, VGG, VGGish)
    "losses": 3,
    "trainers": 4,
    "evaluators": 5,
    "projects": 6, "main": 6, "evaluate": 6, "prepare": 6, "score": 6,
    "sweep": 6, "benchmark": 6, "parity": 6, "parity_ma": 6, "parity_steps": 6,
    "parity_official": 6, "parity_ma_official": 6, "extract": 6, "parse": 6,
    "import_official": 6,
}
LAYER_NAMES = {0: "leaf libraries (utils, errors, metrics)", 1: "data",
               2: "models", 3: "losses", 4: "trainers", 5: "evaluators",
               6: "projects and entry points"}
# Trainer modules any trainer may import (the shared training loop).
SHARED_TRAINERS = {"avjax.trainers.loop", "avjax.trainers.train_lib",
                   "avjax.trainers.run_checkpoints",
                   "avjax.trainers.run_config"}

# (importer, imported) edges that break the rules today. The test fails on
# any violation not listed here AND on any entry that no longer occurs, so
# this only shrinks. Emptied by the trainer-loop refactor (issue 21).
PENDING = set()


def modules() -> Dict[str, str]:
  """{dotted module name: path} of every module under avjax/."""
  out = {}
  for dirpath, dirnames, filenames in os.walk(PACKAGE):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", ".")))
    for f in sorted(filenames):
      if not f.endswith(".py"):
        continue
      rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3]
      parts = rel.split(os.sep)
      if parts[-1] == "__init__":
        parts = parts[:-1]
      out[".".join(parts)] = os.path.join(dirpath, f)
  return out


def _resolve(name: str, known: Set[str]) -> str:
  """The longest known module that is `name` or a package above it."""
  while name and name not in known:
    name = name.rpartition(".")[0]
  return name


def imports_of(module: str, path: str, known: Set[str]) -> Set[str]:
  """avjax modules imported anywhere in `module` (itself excluded)."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  is_package = path.endswith("__init__.py")
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        pkg = module.split(".")
        pkg = pkg if is_package else pkg[:-1]
        pkg = pkg[:len(pkg) - (node.level - 1)]
        base = ".".join(pkg + ([base] if base else []))
      # `from pkg import name`: name is a module when one exists.
      names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
               for a in node.names]
    else:
      continue
    for name in names:
      if name == "avjax" or name.startswith("avjax."):
        target = _resolve(name, known)
        if target and target != module:
          out.add(target)
  return out


def graph() -> Dict[str, Set[str]]:
  mods = modules()
  known = set(mods)
  return {m: imports_of(m, p, known) for m, p in mods.items()}


def layer(module: str) -> int:
  parts = module.split(".")
  key = parts[1] if len(parts) > 1 else parts[0]
  if key not in LAYERS:
    raise KeyError(f"{module}: no layer for avjax.{key}; add it to LAYERS in "
                   "tests/test_import_graph.py")
  return LAYERS[key]


def violations(g: Dict[str, Set[str]]) -> Set[Tuple[str, str]]:
  out = set()
  for module, targets in g.items():
    for target in targets:
      if layer(target) > layer(module):
        out.add((module, target))
      if (module.startswith("avjax.trainers.")
          and target.startswith("avjax.trainers.")
          and target not in SHARED_TRAINERS
          and module not in SHARED_TRAINERS):
        out.add((module, target))
      if (module.startswith("avjax.evaluators.")
          and target.startswith("avjax.trainers.")):
        out.add((module, target))
  return out


def test_every_module_has_a_layer():
  for module in graph():
    layer(module)


def test_no_upward_or_trainer_to_trainer_imports():
  found = violations(graph())
  new = sorted(found - PENDING)
  assert not new, (
      "imports against the layering data < models < losses < trainers < "
      "evaluators < projects/entry points (utils, errors, metrics are leaves) "
      "or between trainers:\n" + "\n".join(f"  {a} -> {b}" for a, b in new))


def test_pending_entries_still_occur():
  gone = sorted(PENDING - violations(graph()))
  assert not gone, ("fixed; remove from PENDING in tests/test_import_graph.py:"
                    "\n" + "\n".join(f"  {a} -> {b}" for a, b in gone))


def test_graph_sees_imports():
  g = graph()
  assert "avjax.data.pipeline" in g["avjax.data.llp_export"]
  assert "avjax.data.tfrecord" in g["avjax.data.pipeline"]
  assert "avjax.utils.onsets" in g["avjax.models.event_heads"]
  assert ("avjax.models.extractors.checkpoints"
          in g["avjax.models.extractors.vggish"])
  assert ("avjax.models.extractors.checkpoints"
          in g["avjax.models.extractors.resnet"])


def test_video_modules_layers():
  # decoding, log-mel and generated videos are data; extractors are models.
  g = graph()
  for module, want in (("avjax.data.video.decode", 1),
                       ("avjax.data.video.logmel", 1),
                       ("avjax.data.synthetic.videos", 1),
                       ("avjax.models.extractors.vggish", 2)):
    assert module in g and layer(module) == want, module


def main(argv: List[str]) -> int:
  del argv
  g = graph()
  bad = violations(g)
  by_layer: Dict[int, List[str]] = {}
  for module in sorted(g):
    by_layer.setdefault(layer(module), []).append(module)
  for n in sorted(by_layer):
    print(f"## {n}: {LAYER_NAMES[n]}")
    for module in by_layer[n]:
      targets = ", ".join(
          t + (" (PENDING)" if (module, t) in PENDING else
               " (VIOLATION)" if (module, t) in bad else "")
          for t in sorted(g[module]))
      print(f"{module} -> {targets or '-'}")
    print()
  print(f"violations: {len(bad)} ({len(bad & PENDING)} pending)")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
