r"""Runs one step of the official MA code (Wu & Yang 2021,
Yu-Wu/Modaily-Aware-Audio-Visual-Video-Parsing) on CPU, patched only at run
time; `avjax.parity_ma` starts it per seed and stage with a torch
interpreter.

  cd RUN && TORCH_PYTHON avjax/parity_ma_official.py --official_dir=MA \
      --step=1 --run_dir=RUN --seed=S --step_size=10 --gamma=0.1 \
      [--stage1_dir=DIR --checkpoint=MMIL_Net] -- <main_avvp.py arguments>

RUN holds `data` (a link to the export's data/, LLP's layout: the official
evaluation reads data/AVVP_eval_*.csv relative to the working directory)
and, for step 3, step 2's need_to_change.pkl. Nothing in MA is modified;
this file imports only `parity_official` (its sibling) from avjax.

  --step=1  MA/step1_train_base_model/main_avvp.py. Phases: train (--mode
            train: saves RUN/MMIL_Net.pt, its last epoch's model, as the
            authors' step 2 reads it), test_best (--mode test --checkpoint
            best), test_final (--checkpoint MMIL_Net).
  --step=2  MA/step2_find_exchange/main_avvp.py --mode estimate_labels
            --model_save_dir STAGE1_DIR/ --checkpoint CHECKPOINT (MMIL_Net:
            the final model, as run.sh; best: the best-on-val one). Phase
            estimate: writes need_to_change.pkl ([need_to_change_v,
            need_to_change_a]: per class, the train-CSV row indices whose
            visual / audio label is dropped, as 0-d torch tensors) in the
            working directory; the runner rewrites it as need_to_change.json
            (plain ints) with the per-class training errors estimate_label
            used (raw and normalised by their maximum).
  --step=3  MA/step3_retrain/main_avvp.py. Phases: train (--mode retrain on
            ./need_to_change.pkl; it tests its last model at the end), then
            test_best (--checkpoint best) and test_final (--checkpoint
            final).

Patches (those of `parity_official`): device cuda -> cpu (`.to`, `.cuda`),
DataLoader num_workers=0, a torchvision stub if missing, StepLR's
step_size/gamma (the code fixes 10/0.1), pandas >= 3 positional `row[0]`,
numpy >= 1.24 `np.int`. Measurement and saving only: every evaluation's
unrounded scores to RUN/metrics_exact.jsonl; best.pt, the model of the last
validation evaluation whose Type@AV is >= every earlier one (the official
HAN rule; the MA code keeps only its last model); final.pt after step 3's
training (step 3 saves nothing).

--order/--dropout (steps 1 and 3; `avjax.parity_steps`): the train phase
in `parity_official.Trajectory` mode (the rows of that order every epoch,
every dropout rate set, init.npz and step_losses.json written).

Seeding: main_avvp.py seeds torch with --seed; before every phase the runner
also calls random.seed(S), numpy.random.seed(S) and torch.manual_seed(S):
step 2's dataloader draws each clip's partner with Python's unseeded
`random` (step 3 too, for an input its model ignores), so without this the
official refinement would differ between runs of the same seed.
"""

import argparse
import json
import os
import pickle
import random
import sys
import time

# pylint: disable=g-import-not-at-top
try:  # run as a script (the torch interpreter need not have avjax)
  import parity_official as base
except ImportError:
  from avjax import parity_official as base
# pylint: enable=g-import-not-at-top

STEPS = {1: "step1_train_base_model", 2: "step2_find_exchange",
         3: "step3_retrain"}
PHASES = {1: ("train", "test_best", "test_final"), 2: ("estimate",),
          3: ("train", "test_best", "test_final")}
TRAIN_MODE = {1: "train", 3: "retrain"}
CHECKPOINTS = {1: {"test_best": "best", "test_final": "MMIL_Net"},
               3: {"test_best": "best", "test_final": "final"}}
PKL, JSON = "need_to_change.pkl", "need_to_change.json"


def seed_all(seed: int) -> None:
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  random.seed(seed)
  np.random.seed(seed)
  torch.manual_seed(seed)


def record_errors(module, out: dict) -> None:
  """Wraps step 2's estimate_label to keep the per-class training errors
  (1 - accuracy of [p > 0.5] on the train clips) and their normalised form
  it divides by (over their maximum)."""
  orig = module.estimate_label

  def estimate_label(datas, v_accs, a_accs):
    for name, acc in (("visual", v_accs), ("audio", a_accs)):
      err = 1 - acc.float()
      out.setdefault("error", {})[name] = err.tolist()
      out.setdefault("normalised_error", {})[name] = (err /
                                                      err.max()).tolist()
    return orig(datas, v_accs, a_accs)
  module.estimate_label = estimate_label


def pkl_to_json(pkl_path: str, json_path: str, errors: dict) -> dict:
  """need_to_change.pkl (lists of 0-d tensors) as plain ints (plus
  `errors`: record_errors')."""
  with open(pkl_path, "rb") as f:
    need_v, need_a = pickle.load(f)
  out = {"format": "[need_to_change_v, need_to_change_a] of step 2: per "
                   "class (the official 25, in order), the train-CSV row "
                   "indices whose visual / audio label is dropped",
         "visual": [[int(i) for i in c] for c in need_v],
         "audio": [[int(i) for i in c] for c in need_a], **errors}
  with open(json_path, "w") as f:
    json.dump(out, f)
  return out


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--official_dir", required=True,
                 help="checkout of the official MA code")
  p.add_argument("--step", type=int, choices=sorted(STEPS), required=True)
  p.add_argument("--run_dir", required=True)
  p.add_argument("--seed", type=int, required=True)
  p.add_argument("--step_size", type=int, required=True)
  p.add_argument("--gamma", type=float, default=0.1)
  p.add_argument("--stage1_dir", help="step 2: step 1's run folder")
  p.add_argument("--checkpoint", default="MMIL_Net",
                 help="step 2: step 1's model to refine with (MMIL_Net: "
                 "its final model; best)")
  p.add_argument("--phases", default=None)
  base.add_trajectory_flags(p)
  p.add_argument("official_args", nargs=argparse.REMAINDER)
  args = p.parse_args(argv)
  rest = base.strip_separator(args.official_args)
  phases = (args.phases.split(",") if args.phases else
            list(PHASES[args.step]))
  unknown = [x for x in phases if x not in PHASES[args.step]]
  if unknown:
    p.error(f"unknown phases {unknown} for step {args.step}; valid: "
            f"{PHASES[args.step]}")
  if args.step == 2 and not args.stage1_dir:
    p.error("--step=2 needs --stage1_dir (step 1's run folder)")
  run_dir = os.path.abspath(args.run_dir)
  print(base.setup_official(os.path.join(args.official_dir,
                                         STEPS[args.step]),
                            args.step_size, args.gamma) +
        f", random/numpy/torch seeded with {args.seed} before each phase",
        flush=True)
  import torch  # pylint: disable=g-import-not-at-top
  import main_avvp  # pylint: disable=g-import-not-at-top
  os.makedirs(run_dir, exist_ok=True)
  pv = argparse.ArgumentParser(add_help=False)
  pv.add_argument("--label_val", default="data/AVVP_val_pd.csv")
  label_val = pv.parse_known_args(rest)[0].label_val
  rec = base.Recorder(main_avvp, os.path.join(run_dir, "metrics_exact.jsonl"),
                      val_label=label_val,
                      best_path=os.path.join(run_dir, "best.pt"))
  args.run_dir = run_dir
  traj = base.trajectory(main_avvp, args) if args.step != 2 else None
  errors = {}
  if args.step == 2:
    record_errors(main_avvp, errors)
  own = run_dir.rstrip("/") + "/"
  times, lrs = {}, []
  for phase in phases:
    rec.phase = phase
    print(f"#### parity phase: {phase}", flush=True)
    t0 = time.time()
    seed_all(args.seed)
    if phase == "estimate":
      argv_phase = base.with_flags(
          rest, mode="estimate_labels",
          model_save_dir=os.path.abspath(args.stage1_dir).rstrip("/") + "/",
          checkpoint=args.checkpoint)
    elif phase == "train":
      argv_phase = base.with_flags(rest, mode=TRAIN_MODE[args.step],
                                   model_save_dir=own)
    else:
      argv_phase = base.with_flags(
          rest, mode="test", model_save_dir=own,
          checkpoint=CHECKPOINTS[args.step][phase])
    base.run_main(main_avvp, argv_phase)
    if phase == "train":
      if args.step == 3:
        torch.save(rec.models[-1].state_dict(),
                   os.path.join(run_dir, "final.pt"))
      lrs = list(base.LRS)
      if traj:
        traj.save()
    if phase == "estimate":
      pkl_to_json(PKL, os.path.join(run_dir, JSON), errors)
    times[phase] = time.time() - t0
  base.write_phases(run_dir, times, lrs, seed=args.seed)
  return 0


if __name__ == "__main__":
  sys.exit(main())
