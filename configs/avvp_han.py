"""HAN (Tian et al. 2020) on AVVP, the avjax main job.

Default (built-in synthetic dataset, a few minutes on 2 CPU cores):
  python -m avjax.main --config=configs/avvp_han.py --workdir=/tmp/avjax/han
One-minute smoke run:
  python -m avjax.main --config=configs/avvp_han.py:runlocal --workdir=/tmp/x
Variants (`:variant=NAME`): han (default), no_hybrid (per-modality
self-attention only), audio_only, visual_only. Real LLP after
`python -m avjax.prepare llp ...`:
  python -m avjax.main --config=configs/avvp_han.py:data=llp \
      --config.data.data_dir=DIR --workdir=...
`data=synthetic_real`: the synthetic set with the real releases' feature
statistics (0..255 quantised audio, heavy-tailed non-negative visual and
motion; `avjax.data.synthetic.avvp`), same labels and schedule as `synthetic`.
"""

from configs import common

VARIANTS = {
    "han": {},
    "no_hybrid": {"cross_attention": False},
    "audio_only": {"input_modalities": "a"},
    "visual_only": {"input_modalities": "v"},
}


def get_config(arg=None):
  arg = common.parse_arg(arg, variant="han", data="synthetic", runlocal=False)
  if arg.variant not in VARIANTS:
    raise ValueError(f"variant={arg.variant!r}; valid: {sorted(VARIANTS)}")
  c = common.avvp_base()
  c.experiment_name = f"avvp_han_{arg.variant}"
  c.model = common.avvp_net(**VARIANTS[arg.variant])
  common.set_data(c, arg.data)
  if arg.runlocal:
    common.runlocal(c)
  return c


# Published LLP test F-scores (%) of HAN (Tian et al. 2020, the AVVP
# benchmark), as /work/shared/papers/han_notes.md ("Reported results on the
# LLP test set") prints them. The notes print no number for the ablations.
PAPER = {"han": dict(zip(
    ("seg_a", "seg_v", "seg_av", "seg_type", "seg_event",
     "ev_a", "ev_v", "ev_av", "ev_type", "ev_event"),
    (60.1, 52.9, 48.9, 54.0, 55.4, 51.3, 48.9, 43.0, 47.7, 48.0)))}


def get_hyper(h):
  """The platform issue's comparison: HAN vs its ablations."""
  rows = [{"config": f"configs/avvp_han.py:variant={v}"} for v in VARIANTS]
  for row, v in zip(rows, VARIANTS):
    if v in PAPER:
      row["paper"] = dict(PAPER[v])
  return rows
