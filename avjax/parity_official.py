r"""Runs the official HAN code (YapengTian/AVVP-ECCV20) on CPU, patched only
at run time; `avjax.parity` starts it with a torch interpreter.

  cd EXPORT && TORCH_PYTHON avjax/parity_official.py --official_dir=DIR \
      --run_dir=RUN --step_size=10 --gamma=0.1 -- <main_avvp.py arguments>

EXPORT holds data/ in LLP's layout (`avjax.data.llp_export`): the official
evaluation reads data/AVVP_eval_*.csv relative to the working directory.
This file imports nothing from avjax (the torch interpreter need not have
jax), and nothing in DIR is modified. Phases (--phases):

  train       main_avvp.py --mode train (saves RUN/MMIL_Net.pt, the official
              best-on-val checkpoint); then saves the last epoch's model as
              RUN/final.pt
  test_best   main_avvp.py --mode test --checkpoint MMIL_Net
  test_final  main_avvp.py --mode test --checkpoint final

Each phase prints `#### parity phase: <name>` before its output. Patches:

  * device: torch.Tensor.to / nn.Module.to map 'cuda' to 'cpu';
  * DataLoader: num_workers=0, pin_memory=False;
  * a stub `torchvision` (transforms.Compose, utils) if it is not installed;
  * StepLR: step_size and gamma from --step_size / --gamma;
  * pandas >= 3: an integer key missing from a Series' string index falls
    back to position (`row[0]`, `row[-1]` in the official code);
  * measurement only: MMIL_Net instances are recorded (to save the final
    model), and eval/segment_level/event_level are wrapped to write every
    evaluation's ten scores unrounded to RUN/metrics_exact.jsonl (the
    official code prints them rounded to 0.1) and the phase times to
    RUN/phases.json.
"""

import argparse
import json
import os
import sys
import time
import types

KEYS = ("seg_a", "seg_v", "seg_av", "seg_type", "seg_event",
        "ev_a", "ev_v", "ev_av", "ev_type", "ev_event")
PHASES = ("train", "test_best", "test_final")
CHECKPOINTS = {"test_best": "MMIL_Net", "test_final": "final"}
LRS = []  # the learning rate after every StepLR step (the first: at init)


def _cpu(x):
  import torch  # pylint: disable=g-import-not-at-top
  if isinstance(x, str) and x.startswith("cuda"):
    return "cpu"
  if isinstance(x, torch.device) and x.type == "cuda":
    return torch.device("cpu")
  return x


def patch_device():
  import torch  # pylint: disable=g-import-not-at-top
  for cls in (torch.Tensor, torch.nn.Module):
    orig = cls.to

    def to(self, *args, _orig=orig, **kwargs):
      args = tuple(_cpu(a) for a in args)
      if "device" in kwargs:
        kwargs["device"] = _cpu(kwargs["device"])
      return _orig(self, *args, **kwargs)
    cls.to = to


def patch_dataloader():
  import torch.utils.data as tud  # pylint: disable=g-import-not-at-top

  class DataLoader(tud.DataLoader):

    def __init__(self, *args, **kwargs):
      args = list(args)
      if len(args) > 5:  # (dataset, batch_size, shuffle, sampler,
        args[5] = 0      #  batch_sampler, num_workers, ...)
      else:
        kwargs["num_workers"] = 0
      kwargs["pin_memory"] = False
      kwargs.pop("prefetch_factor", None)
      kwargs.pop("persistent_workers", None)
      super().__init__(*args, **kwargs)

  tud.DataLoader = DataLoader


def stub_torchvision():
  """Installs a minimal `torchvision` if the real one is missing."""
  try:
    import torchvision  # pylint: disable=g-import-not-at-top,unused-import
    return False
  except ImportError:
    pass

  class Compose:

    def __init__(self, transforms):
      self.transforms = transforms

    def __call__(self, x):
      for t in self.transforms:
        x = t(x)
      return x

  tv = types.ModuleType("torchvision")
  tv.transforms = types.ModuleType("torchvision.transforms")
  tv.transforms.Compose = Compose
  tv.utils = types.ModuleType("torchvision.utils")
  sys.modules.update({"torchvision": tv,
                      "torchvision.transforms": tv.transforms,
                      "torchvision.utils": tv.utils})
  return True


def patch_step_lr(step_size: int, gamma: float):
  import torch.optim as optim  # pylint: disable=g-import-not-at-top

  class StepLR(optim.lr_scheduler.StepLR):

    def __init__(self, optimizer, step_size_=None, gamma_=None, *args,
                 **kwargs):
      kwargs.pop("step_size", None)
      kwargs.pop("gamma", None)
      super().__init__(optimizer, step_size, gamma, *args, **kwargs)

    def step(self, *args, **kwargs):
      super().step(*args, **kwargs)
      LRS.append(self.optimizer.param_groups[0]["lr"])

  optim.lr_scheduler.StepLR = StepLR


def patch_pandas():
  import pandas as pd  # pylint: disable=g-import-not-at-top
  if int(pd.__version__.split(".")[0]) < 3:
    return False
  orig = pd.Series.__getitem__

  def getitem(self, key):
    try:
      return orig(self, key)
    except KeyError:
      if (isinstance(key, int) and not isinstance(key, bool) and
          not pd.api.types.is_integer_dtype(self.index.dtype)):
        return self.iloc[key]
      raise
  pd.Series.__getitem__ = getitem
  return True


class Recorder:
  """Wraps the official module's eval and metric functions."""

  def __init__(self, module, path: str):
    import numpy as np  # pylint: disable=g-import-not-at-top
    self.np, self.path, self.phase, self.count = np, path, None, 0
    self.models, self.seg, self.ev = [], [], []
    seg, ev, ev_fn, net = (module.segment_level, module.event_level,
                           module.eval, module.MMIL_Net)

    def segment_level(*a, **k):
      out = seg(*a, **k)
      self.seg.append(out)
      return out

    def event_level(*a, **k):
      out = ev(*a, **k)
      self.ev.append(out)
      return out

    def evaluate(*a, **k):
      self.seg, self.ev = [], []
      out = ev_fn(*a, **k)
      self.count += 1
      self.write(out)
      return out

    def make_model(*a, **k):
      m = net(*a, **k)
      self.models.append(m)
      return m

    module.segment_level, module.event_level = segment_level, event_level
    module.eval, module.MMIL_Net = evaluate, make_model

  def write(self, returned):
    np = self.np
    res = {}
    for level, rows in (("seg", self.seg), ("ev", self.ev)):
      if not rows:
        return
      a, v, f, av = (100 * np.mean(np.array([r[i] for r in rows]))
                     for i in range(4))
      res.update({f"{level}_a": a, f"{level}_v": v, f"{level}_av": av,
                  f"{level}_type": (av + a + v) / 3., f"{level}_event": f})
    rec = {"phase": self.phase, "index": self.count,
           "num_clips": len(self.seg), "returned": float(returned),
           **{k: float(res[k]) for k in KEYS}}
    with open(self.path, "a") as fh:
      fh.write(json.dumps(rec) + "\n")


def _with(argv, **flags):
  out = list(argv)
  for k, v in flags.items():
    out += [f"--{k}", str(v)]
  return out


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--official_dir", required=True)
  p.add_argument("--run_dir", required=True)
  p.add_argument("--step_size", type=int, required=True)
  p.add_argument("--gamma", type=float, default=0.1)
  p.add_argument("--phases", default=",".join(PHASES))
  p.add_argument("official_args", nargs=argparse.REMAINDER)
  args = p.parse_args(argv)
  rest = args.official_args[1:] if args.official_args[:1] == ["--"] else (
      args.official_args)
  phases = [x for x in args.phases.split(",") if x]
  unknown = [x for x in phases if x not in PHASES]
  if unknown:
    p.error(f"unknown phases {unknown}; valid: {PHASES}")
  official = os.path.abspath(args.official_dir)
  here = os.path.dirname(os.path.abspath(__file__))
  # The official code imports `utils` and `nets`: never avjax's packages.
  sys.path[:] = [official] + [x for x in sys.path if os.path.abspath(
      x or ".") not in (here, os.path.dirname(here))]
  patch_device()
  patch_dataloader()
  stubbed = stub_torchvision()
  patch_step_lr(args.step_size, args.gamma)
  patched_pandas = patch_pandas()
  import torch  # pylint: disable=g-import-not-at-top
  import main_avvp  # pylint: disable=g-import-not-at-top
  os.makedirs(args.run_dir, exist_ok=True)
  rec = Recorder(main_avvp, os.path.join(args.run_dir, "metrics_exact.jsonl"))
  print(f"#### parity patches: device cuda->cpu, DataLoader num_workers=0, "
        f"torchvision stub={stubbed}, StepLR(step_size={args.step_size}, "
        f"gamma={args.gamma}), pandas positional fallback={patched_pandas}, "
        f"torch {torch.__version__}", flush=True)
  times = {}
  lrs = []
  for phase in phases:
    rec.phase = phase
    print(f"#### parity phase: {phase}", flush=True)
    t0 = time.time()
    argv_phase = _with(rest, model_save_dir=args.run_dir.rstrip("/") + "/")
    if phase != "train":
      argv_phase = _with(argv_phase, mode="test",
                         checkpoint=CHECKPOINTS[phase])
    sys.argv = ["main_avvp.py"] + argv_phase
    main_avvp.main()
    if phase == "train":
      torch.save(rec.models[-1].state_dict(),
                 os.path.join(args.run_dir, "final.pt"))
      lrs = list(LRS)
    times[phase] = time.time() - t0
    sys.stdout.flush()
  with open(os.path.join(args.run_dir, "phases.json"), "w") as fh:
    json.dump({"seconds": times, "lr": lrs}, fh, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
