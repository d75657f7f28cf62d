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
AVG pretraining rows (`avg_loss=uni|cross|multi`, paper's main rows: uni):
  pretrained     full + AVG encoder pretrained, then frozen (58.4/54.2/50.4/
                 54.4/54.4); one command: pretrain/ then finetune/ stages
  pretrain_e2e   full + AVG encoder pretrained, fine-tuned end to end
                 (59.8/54.7/49.4/54.7/56.2; cross 60.3/55.1/49.9/55.1/56.4,
                 multi 60.8/54.8/50.0/55.2/56.2)
  avg_pretrain   the AVG pretraining alone (grounding metrics); its workdir
                 can be used as --config.model.init_from=DIR of any row
  han            HAN (the tables' first row: shared self+cross layer, loss
                 "han")
Tables: `get_hyper("table1")` (segment-level columns), `"table2"`
(event-level), `"appendix"` (the three AVG losses), e.g.
  python -m avjax.sweep --config=configs/avvp_crossmodal.py --hyper=table1 \
      --workdir=DIR
"""

import ml_collections

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
_FULL = VARIANTS["full"]
VARIANTS.update({
    "han": {},
    "pretrained": dict(_FULL, avg_layers=2, freeze_pretrained=True),
    "pretrain_e2e": dict(_FULL, avg_layers=2),
    "avg_pretrain": dict(_FULL, avg_layers=2),
})
TRAINERS = {"pretrained": "avg_pipeline", "pretrain_e2e": "avg_pipeline",
            "avg_pretrain": "avg_pretrain"}
COLUMNS = {"seg": ["seg_a", "seg_v", "seg_av", "seg_type", "seg_event"],
           "ev": ["ev_a", "ev_v", "ev_av", "ev_type", "ev_event"]}


def avg_block(loss: str) -> ml_collections.ConfigDict:
  """AVG pretraining settings (thresholds: cosine of the input audio / the
  segment-mean visual frames; on the synthetic default they link snippets
  that share an event with ~99% / ~90% precision)."""
  return ml_collections.ConfigDict({
      "loss": loss, "scope": "clip", "pos_margin": 0.8, "neg_margin": 0.2,
      "audio_threshold": 0.5, "visual_threshold": 0.65,
      "num_epochs": 3, "lr": 3e-4, "batch_size": 16,
      "best_metric": "pair_acc",
      "data_dir": "", "split": "train", "eval_splits": ["val", "test"],
      # avg_pipeline's pretraining folder (relative: to the run's workdir);
      # rows that share it pretrain once.
      "pretrain_dir": "pretrain"})


def get_config(arg=None):
  arg = common.parse_arg(arg, variant="full", data="synthetic",
                         runlocal=False, avg_loss="uni", table="seg")
  if arg.variant not in VARIANTS:
    raise ValueError(f"variant={arg.variant!r}; valid: {sorted(VARIANTS)}")
  c = common.avvp_base()
  c.experiment_name = f"avvp_crossmodal_{arg.variant}"
  c.model = common.avvp_net(**VARIANTS[arg.variant])
  c.loss.type = "han" if arg.variant == "han" else "crossmodal"
  c.loss.grl_scale = 1.0  # x the DANN reversal scale (0: no reversal)
  c.trainer = TRAINERS.get(arg.variant, c.trainer)
  if c.model.avg_layers:
    c.avg = avg_block(arg.avg_loss)
    if arg.avg_loss != "uni":
      c.experiment_name += f"_{arg.avg_loss}"
  c.table_keys = COLUMNS[arg.table]
  c.optim.lr = 6e-4
  c.optim.decay_factor = 0.5
  common.set_data(c, arg.data)
  if arg.data == "llp":  # the paper's schedule
    c.batch_size = 64
    c.num_epochs = 40
    c.optim.decay_every_epochs = 6
  if arg.runlocal:
    common.runlocal(c)
    if c.model.avg_layers:
      c.avg.num_epochs = 1
  return c


TABLE_ROWS = ["han", "base", "gcaa", "adv_skip", "full", "pretrained",
              "pretrain_e2e"]
NAMES = {"han": "HAN", "base": "Base", "gcaa": "Base + GCAA",
         "adv_skip": "Base + Adv + Skip", "full": "Base + Adv + Skip + GCAA",
         "pretrained": "Pretrained", "pretrain_e2e": "Pretrain E2E",
         "skip": "Base + Skip", "adv": "Base + Adv"}


def get_hyper(h="table1"):
  """Rows of the paper's tables: `table1` (segment-level F), `table2`
  (event-level F; same runs, so the same --workdir reuses them), `appendix`
  (Pretrain E2E with the uni/cross/multi AVG losses), `ablation` (every
  variant without pretraining)."""
  cols = "ev" if h == "table2" else "seg"
  rows = {"table1": [(v, "uni") for v in TABLE_ROWS],
          "table2": [(v, "uni") for v in TABLE_ROWS],
          "appendix": [("pretrain_e2e", k) for k in ("uni", "cross", "multi")],
          "ablation": [(v, "uni") for v in
                       ("han", "base", "skip", "gcaa", "adv", "adv_skip",
                        "full")]}
  if h not in rows:
    raise ValueError(f"get_hyper({h!r}); valid: {sorted(rows)}")
  out = []
  for v, loss in rows[h]:
    name = NAMES[v] + (f" ({loss})" if h == "appendix" else "")
    arg = f"variant={v},table={cols}" + (
        f",avg_loss={loss}" if loss != "uni" else "")
    row = {"config": f"configs/avvp_crossmodal.py:{arg}", "name": name}
    if v in TRAINERS:  # the pretrained rows share one pretraining run
      row["overrides"] = {"avg.pretrain_dir": f"../AVG pretraining ({loss})"}
    out.append(row)
  return out
