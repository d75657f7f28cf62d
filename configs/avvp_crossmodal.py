"""Cross-modal learning for AVVP (Lamba et al. 2021) on the HAN family.

Default (built-in synthetic dataset, variant `full`):
  python -m avjax.main --config=configs/avvp_crossmodal.py \
      --workdir=/tmp/avjax/crossmodal
One-minute smoke run:
  python -m avjax.main --config=configs/avvp_crossmodal.py:runlocal \
      --workdir=/tmp/x
Variants (`:variant=NAME`), the rows of the paper's Tables 1-2 without AVG
pretraining (LLP test, segment-level audio/visual/AV/type/event F):
  base           per-modality self-attention, shared cross-modal layer
                 (paper 60.0/52.6/48.4/53.7/54.8)
  skip           base + skip connections (not a paper row; ablation)
  gcaa           base + global-context-aware attention (62.0/53.4/48.9/...)
  adv            base + adversarial modality discriminator (not a paper row)
  adv_skip       base + adv + skip (61.5/53.3/48.8/54.5/56.0)
  full           base + adv + skip + GCAA (61.6/54.7/50.3/55.5/56.1)
Real LLP after `python -m avjax.prepare llp ...` (paper schedule: batch 64,
Adam 6e-4 halved every 6 epochs, 40 epochs):
  python -m avjax.main --config=configs/avvp_crossmodal.py:data=llp \
      --config.data.data_dir=DIR --workdir=...
AVG pretraining (the paper's "Pre-trained" rows) is not implemented.
"""

from configs import common

_BASE = {"separate_self_attention": True}
VARIANTS = {
    "base": _BASE,
    "skip": dict(_BASE, skip=True),
    "gcaa": dict(_BASE, global_context=True),
    "adv": dict(_BASE, adversarial=True),
    "adv_skip": dict(_BASE, adversarial=True, skip=True),
    "full": dict(_BASE, adversarial=True, skip=True, global_context=True),
}


def get_config(arg=None):
  arg = common.parse_arg(arg, variant="full", data="synthetic",
                         runlocal=False)
  if arg.variant not in VARIANTS:
    raise ValueError(f"variant={arg.variant!r}; valid: {sorted(VARIANTS)}")
  c = common.avvp_base()
  c.experiment_name = f"avvp_crossmodal_{arg.variant}"
  c.model = common.avvp_net(**VARIANTS[arg.variant])
  c.loss.type = "crossmodal"
  c.optim.lr = 6e-4
  c.optim.decay_factor = 0.5
  common.set_data(c, arg.data)
  if arg.data == "llp":  # the paper's schedule
    c.batch_size = 64
    c.num_epochs = 40
    c.optim.decay_every_epochs = 6
  if arg.runlocal:
    common.runlocal(c)
  return c


def get_hyper(h):
  """The paper's ablation rows (without AVG pretraining)."""
  del h
  return [{"config": f"configs/avvp_crossmodal.py:variant={v}"}
          for v in VARIANTS]
