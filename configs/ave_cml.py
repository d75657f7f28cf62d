"""AVE cross-modality localization (Tian et al. 2018, Sec. 5, Table 3).

Default (built-in synthetic AVE-like dataset, AVDLN):
  python -m avjax.main --config=configs/ave_cml.py --workdir=/tmp/avjax/cml
Variants (`:variant=NAME`): avdln (contrastive distance learning, margin
2.0), dcca (deep CCA baseline). Table 3 (A2V / V2A exact-match accuracy on
the test clips whose event is shorter than the clip):
  python -m avjax.sweep --config=configs/ave_cml.py --hyper=table3 \
      --workdir=DIR
Schedule: the reference's batch 8, 20 epochs (also on the synthetic data).
Training protocol (`:form=NAME`; default `reference` with data=ave, `avjax`
otherwise):
  reference  the official code (cmm_train.py): same-time pairs (A_t, V_t),
             y = 1 on event segments and 0 on background ones, no shifted
             or cross-clip negatives, no balancing (loss.pairs=same_time);
             batches of 8 *pairs* drawn from a permutation of all the
             split's pairs (data.batch_unit=segment_split: 10x the updates
             of 8 clips; Keras fit(shuffle=True)); the final model is
             reported (eval.checkpoint=final; the reference saves its
             weights after the last epoch); Keras's Dense initialisation
             (model.init_scheme=keras: Glorot-uniform, zero bias);
             Keras's Adam (optim.adam_form=keras: eps 1e-7 added to
             sqrt(v) before the bias correction) and distance
             sqrt(max(d^2, 1e-7)) (model.distance_floor=keras).
  avjax      the earlier form: batches of 8 clips; event pairs against
             shifted (A_i, V_j) and cross-clip negatives, weighed half and
             half (loss.pairs=shifted); the best epoch on val reported;
             flax's initialisers, optax's Adam, sqrt(d^2 + 1e-9).
Real AVE after `python -m avjax.prepare ave ...` (needs visual_feature_vec.h5):
  python -m avjax.main --config=configs/ave_cml.py:data=ave \
      --config.data.data_dir=DIR --workdir=...
Paper: AVDLN A2V 44.8, V2A 35.6; DCCA 34.8, 34.1.
"""

import ml_collections

from configs import ave
from configs import common

VARIANTS = {
    "avdln": {"kind": "avdln", "out": 64},
    "dcca": {"kind": "dcca", "out": 16},
}
LOSSES = {"avdln": "contrastive", "dcca": "dcca"}
FORMS = {  # see the module docstring
    "reference": {"pairs": "same_time", "batch_unit": "segment_split",
                  "checkpoint": "final", "init": "keras", "adam": "keras",
                  "floor": "keras"},
    "avjax": {"pairs": "shifted", "batch_unit": "clip", "checkpoint": "best",
              "init": "flax", "adam": "optax", "floor": "add"},
}


def get_config(arg=None):
  arg = common.parse_arg(arg, variant="avdln", data="synthetic", form="",
                         runlocal=False)
  if arg.variant not in VARIANTS:
    raise ValueError(f"variant={arg.variant!r}; valid: {sorted(VARIANTS)}")
  form = arg.form or ("reference" if arg.data == "ave" else "avjax")
  if form not in FORMS:
    raise ValueError(f"form={form!r}; valid: {sorted(FORMS)}")
  c = ave.base(f"ave_cml_{arg.variant}")
  c.trainer = "avdln"
  c.model = ml_collections.ConfigDict(dict(
      {"name": "avdln", "hidden": 128, "visual_key": "visual_vec",
       "init_scheme": FORMS[form]["init"],
       "distance_floor": FORMS[form]["floor"]},
      **VARIANTS[arg.variant]))
  c.data = ave.data(arg.data, weak=False)
  c.loss = ml_collections.ConfigDict(
      {"type": LOSSES[arg.variant], "margin": 2.0, "cca_dim": 8,
       "pairs": FORMS[form]["pairs"]})
  c.data.batch_unit = FORMS[form]["batch_unit"]
  c.eval = ml_collections.ConfigDict({"evaluator": "ave_cml",
                                      "best_metric": "cml",
                                      "checkpoint": FORMS[form]["checkpoint"]})
  c.table_keys = ["a2v", "v2a", "chance", "num_queries"]
  # The reference schedule, also on the synthetic data (2000 steps there;
  # with batch 32 x 15 epochs, 375 steps, AVDLN stays at the trivial
  # constant-distance solution).
  c.batch_size = 8
  c.num_epochs = 20
  c.optim.decay_every_steps = 0  # Keras's Adam at a constant rate
  c.optim.decay_every_epochs = 20
  c.optim.adam_form = FORMS[form]["adam"]
  if arg.runlocal:
    ave.runlocal(c)
  return c


# DCCA estimates covariances per batch, so it is also run with batch 32.
BIG_BATCH = {"batch_size": 32, "num_epochs": 15,
             "optim.decay_every_epochs": 10}


# Published cross-modality localization accuracy (%) of Tian et al. 2018,
# Table 3 (/work/shared/papers/ave_event_localization.md). DCCA-b32 (batch
# 32, an avjax variant) has no published counterpart.
PAPER = {"AVDLN": {"a2v": 44.8, "v2a": 35.6},
         "DCCA": {"a2v": 34.8, "v2a": 34.1}}


def get_hyper(h):
  """table3: AVDLN and the DCCA baseline (also DCCA with batch 32)."""
  if h not in (None, "table3"):
    raise ValueError(f"hyper={h!r}; valid: 'table3'")
  return [{"config": "configs/ave_cml.py:variant=avdln", "name": "AVDLN",
           "paper": PAPER["AVDLN"]},
          {"config": "configs/ave_cml.py:variant=dcca", "name": "DCCA",
           "paper": PAPER["DCCA"]},
          {"config": "configs/ave_cml.py:variant=dcca", "name": "DCCA-b32",
           "overrides": BIG_BATCH}]
