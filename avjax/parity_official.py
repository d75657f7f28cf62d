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

  * device: torch.Tensor.to / nn.Module.to map 'cuda' to 'cpu', and
    Tensor.cuda / Module.cuda are no-ops;
  * DataLoader: num_workers=0, pin_memory=False;
  * a stub `torchvision` (transforms.Compose, utils) if it is not installed;
  * StepLR: step_size and gamma from --step_size / --gamma;
  * pandas >= 3: an integer key missing from a Series' string index falls
    back to position (`row[0]`, `row[-1]` in the official code);
  * numpy >= 1.24: the removed aliases np.int / np.float / np.bool are set
    back to the builtins (only where missing);
  * measurement only: MMIL_Net instances are recorded (to save the final
    model), and eval/segment_level/event_level are wrapped to write every
    evaluation's ten scores unrounded to RUN/metrics_exact.jsonl (the
    official code prints them rounded to 0.1) and the phase times to
    RUN/phases.json.

With --order (`avjax.parity_steps`: same weights, same order), the train
phase also runs in `Trajectory` mode: the training clips in the order
listed in that JSON file every epoch, dropout set to --dropout, the initial
weights saved to RUN/init.npz and every step's loss terms to
RUN/step_losses.json. Nothing else of the training changes.

The pieces (`setup_official`, `Recorder`, `Trajectory`, `run_main`) also
run the three steps of the official MA code (`avjax/parity_ma_official.py`).
"""

import argparse
import json
import os
import sys
import time
import types
from typing import Optional

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
    cls.cuda = lambda self, *args, **kwargs: self


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


def patch_numpy_aliases():
  """np.int / np.float / np.bool (removed in numpy 1.24) as the builtins
  they aliased; returns the names set."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  out = []
  for name, value in (("int", int), ("float", float), ("bool", bool)):
    if not hasattr(np, name):
      setattr(np, name, value)
      out.append(f"np.{name}")
  return out


class Recorder:
  """Wraps the official module's eval and metric functions.

  Every evaluation's ten scores go to `path` (a JSON line with the phase
  and the label file evaluated). With `best_path`, the model of every
  validation evaluation (label file `val_label`) of the train phase whose
  returned score is >= every earlier one (main_avvp.py's best rule) is
  saved there (for official code that keeps only its last model).
  """

  def __init__(self, module, path: str, val_label: Optional[str] = None,
               best_path: Optional[str] = None):
    import numpy as np  # pylint: disable=g-import-not-at-top
    self.np, self.path, self.phase, self.count = np, path, None, 0
    self.val_label, self.best_path, self.best_f = val_label, best_path, 0.0
    self.models, self.seg, self.ev = [], [], []
    seg, ev, ev_fn, net = (getattr(module, k, None) for k in (
        "segment_level", "event_level", "eval", "MMIL_Net"))

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
      label = a[2] if len(a) > 2 else k.get("set")
      self.write(out, label)
      if (self.best_path and self.phase == "train" and
          label == self.val_label and out >= self.best_f):
        import torch  # pylint: disable=g-import-not-at-top
        self.best_f = out
        torch.save((a[0] if a else k["model"]).state_dict(), self.best_path)
      return out

    def make_model(*a, **k):
      m = net(*a, **k)
      self.models.append(m)
      return m

    for name, orig, fn in (("segment_level", seg, segment_level),
                           ("event_level", ev, event_level),
                           ("eval", ev_fn, evaluate),
                           ("MMIL_Net", net, make_model)):
      if orig is not None:  # (MA's step 2 evaluates nothing)
        setattr(module, name, fn)

  def write(self, returned, label=None):
    np = self.np
    res = {}
    for level, rows in (("seg", self.seg), ("ev", self.ev)):
      if not rows:
        return
      a, v, f, av = (100 * np.mean(np.array([r[i] for r in rows]))
                     for i in range(4))
      res.update({f"{level}_a": a, f"{level}_v": v, f"{level}_av": av,
                  f"{level}_type": (av + a + v) / 3., f"{level}_event": f})
    rec = {"phase": self.phase, "index": self.count, "label_file": label,
           "num_clips": len(self.seg), "returned": float(returned),
           **{k: float(res[k]) for k in KEYS}}
    with open(self.path, "a") as fh:
      fh.write(json.dumps(rec) + "\n")


class Trajectory:
  """Same-weights / same-order mode of the train phase.

  Installed on the official module after `Recorder`: the model built first
  has its initial state_dict saved to `run_dir/init.npz` (numpy arrays
  under the state_dict's names, what `avjax.import_official` reads without
  torch) and every nn.Dropout and nn.MultiheadAttention dropout rate set to
  `dropout`; the shuffled (training) DataLoader draws the dataset rows of
  `order` (a JSON file {"rows": [...]}: avjax's written order) every epoch
  instead of a random permutation; every BCELoss and, where the module has
  one, LabelSmoothingLoss value is recorded, and each optimizer step closes
  a step (`save` writes them to `run_dir/step_losses.json`: one list of
  loss terms per step, in call order).
  """

  def __init__(self, module, run_dir: str, order_path: str, dropout: float):
    import numpy as np  # pylint: disable=g-import-not-at-top
    import torch  # pylint: disable=g-import-not-at-top
    import torch.utils.data as tud  # pylint: disable=g-import-not-at-top
    with open(order_path) as f:
      self.order = [int(i) for i in json.load(f)["rows"]]
    self.run_dir, self.dropout = run_dir, float(dropout)
    self.steps, self.current = [], []
    make, nn = module.MMIL_Net, torch.nn
    init_path = os.path.join(run_dir, "init.npz")

    def make_model(*a, **k):
      m = make(*a, **k)
      if not os.path.exists(init_path):
        np.savez(init_path, **{n: v.detach().cpu().numpy()
                               for n, v in m.state_dict().items()})
      for mod in m.modules():
        if isinstance(mod, nn.Dropout):
          mod.p = self.dropout
        elif isinstance(mod, nn.MultiheadAttention):
          mod.dropout = self.dropout
      return m

    def loader(dataset, batch_size=1, shuffle=False, **_):
      if shuffle:
        if (not self.order or len(self.order) > len(dataset) or
            max(self.order) >= len(dataset)):
          raise ValueError(f"--order={order_path}: no rows, or rows beyond "
                           f"the {len(dataset)}-row training set")
        return tud.DataLoader(dataset, batch_size=batch_size,
                              sampler=self.order, num_workers=0)
      return tud.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                            num_workers=0)

    def recording(cls):
      orig = cls.forward

      def forward(mod, *a, **k):
        out = orig(mod, *a, **k)
        self.current.append(float(out))
        return out
      cls.forward = forward

    recording(nn.BCELoss)
    if hasattr(module, "LabelSmoothingLoss"):
      recording(module.LabelSmoothingLoss)
    step = torch.optim.Adam.step

    def adam_step(opt, *a, **k):
      self.steps.append(self.current)
      self.current = []
      return step(opt, *a, **k)
    torch.optim.Adam.step = adam_step
    module.MMIL_Net, module.DataLoader = make_model, loader

  def save(self) -> None:
    with open(os.path.join(self.run_dir, "step_losses.json"), "w") as fh:
      json.dump({"dropout": self.dropout, "order_rows": len(self.order),
                 "steps": self.steps}, fh)


def add_trajectory_flags(p) -> None:
  p.add_argument("--order", default=None,
                 help="Trajectory mode (avjax.parity_steps): a JSON file "
                 "{\"rows\": [...]}, the training rows of every epoch")
  p.add_argument("--dropout", type=float, default=None,
                 help="Trajectory mode: every dropout rate (0: none)")


def trajectory(module, args) -> Optional[Trajectory]:
  """`Trajectory` when --order is given (--dropout defaults to 0)."""
  if not args.order:
    return None
  return Trajectory(module, args.run_dir, args.order, args.dropout or 0.0)


def with_flags(argv, **flags):
  """argv with `--name value` appended (argparse: the last one wins)."""
  out = list(argv)
  for k, v in flags.items():
    out += [f"--{k}", str(v)]
  return out


def setup_official(official_dir: str, step_size: int, gamma: float) -> str:
  """Puts `official_dir` first on sys.path (never avjax's packages: the
  official code imports `utils` and `nets`) and installs the patches;
  returns the line describing them."""
  here = os.path.dirname(os.path.abspath(__file__))
  sys.path[:] = [os.path.abspath(official_dir)] + [
      x for x in sys.path if os.path.abspath(x or ".") not in (
          here, os.path.dirname(here))]
  patch_device()
  patch_dataloader()
  stubbed = stub_torchvision()
  patch_step_lr(step_size, gamma)
  patched_pandas = patch_pandas()
  aliases = patch_numpy_aliases()
  import torch  # pylint: disable=g-import-not-at-top
  return (f"#### parity patches: device cuda->cpu, DataLoader num_workers=0, "
          f"torchvision stub={stubbed}, StepLR(step_size={step_size}, "
          f"gamma={gamma}), pandas positional fallback={patched_pandas}, "
          f"numpy aliases={','.join(aliases) or 'none'}, "
          f"torch {torch.__version__}")


def run_main(module, argv) -> None:
  """Runs the official `module.main()` with `argv` as its command line."""
  sys.argv = ["main_avvp.py"] + list(argv)
  module.main()
  sys.stdout.flush()


def write_phases(run_dir: str, times, lrs, **extra) -> None:
  with open(os.path.join(run_dir, "phases.json"), "w") as fh:
    json.dump({"seconds": times, "lr": lrs, **extra}, fh, indent=1)


def strip_separator(argv):
  return argv[1:] if argv[:1] == ["--"] else argv


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--official_dir", required=True)
  p.add_argument("--run_dir", required=True)
  p.add_argument("--step_size", type=int, required=True)
  p.add_argument("--gamma", type=float, default=0.1)
  p.add_argument("--phases", default=",".join(PHASES))
  add_trajectory_flags(p)
  p.add_argument("official_args", nargs=argparse.REMAINDER)
  args = p.parse_args(argv)
  rest = strip_separator(args.official_args)
  phases = [x for x in args.phases.split(",") if x]
  unknown = [x for x in phases if x not in PHASES]
  if unknown:
    p.error(f"unknown phases {unknown}; valid: {PHASES}")
  print(setup_official(args.official_dir, args.step_size, args.gamma),
        flush=True)
  import torch  # pylint: disable=g-import-not-at-top
  import main_avvp  # pylint: disable=g-import-not-at-top
  os.makedirs(args.run_dir, exist_ok=True)
  rec = Recorder(main_avvp, os.path.join(args.run_dir, "metrics_exact.jsonl"))
  traj = trajectory(main_avvp, args)
  times = {}
  lrs = []
  for phase in phases:
    rec.phase = phase
    print(f"#### parity phase: {phase}", flush=True)
    t0 = time.time()
    argv_phase = with_flags(rest, model_save_dir=args.run_dir.rstrip("/") +
                            "/")
    if phase != "train":
      argv_phase = with_flags(argv_phase, mode="test",
                              checkpoint=CHECKPOINTS[phase])
    run_main(main_avvp, argv_phase)
    if phase == "train":
      torch.save(rec.models[-1].state_dict(),
                 os.path.join(args.run_dir, "final.pt"))
      lrs = list(LRS)
      if traj:
        traj.save()
    times[phase] = time.time() - t0
  write_phases(args.run_dir, times, lrs)
  return 0


if __name__ == "__main__":
  sys.exit(main())
