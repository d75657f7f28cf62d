"""Shared config pieces: `parse_arg`, data blocks, the AVVP base config."""

import dataclasses

import ml_collections

from avjax.data.synthetic import avvp as synthetic


def parse_arg(arg, lazy=False, **spec):
  """Parses "runlocal,variant=no_hybrid" into a ConfigDict with defaults.

  Each keyword of `spec` names a valid key and its default; its type decides
  how the value is parsed (bool: bare key or =True/False). Unknown keys raise.
  """
  res = ml_collections.ConfigDict(dict(spec))
  if not arg:
    return res
  for part in arg.split(","):
    key, _, val = part.partition("=")
    if key not in spec:
      if lazy:
        res[key] = val
        continue
      raise ValueError(f"unknown config argument {key!r}; valid: "
                       f"{sorted(spec)}")
    default = spec[key]
    if isinstance(default, bool):
      res[key] = val.lower() in ("", "1", "true", "yes")
    elif isinstance(default, int):
      res[key] = int(val)
    elif isinstance(default, float):
      res[key] = float(val)
    else:
      res[key] = val
  return res


def generator_settings(config_cls, **overrides) -> dict:
  """Every field of a synthetic generator's config dataclass (its defaults,
  then `overrides`), so `--config.data.synthetic.<field>=...` overrides any
  of them from the command line. The data cache is keyed by the dataclass,
  so a full dict and a sparse one give the same dataset."""
  return dataclasses.asdict(config_cls(**overrides))


def data_block(name: str, synthetic_settings: dict, data_dir: str = "",
               shuffle_buffer: int = 0, extra_train_splits: tuple = (),
               **extra) -> ml_collections.ConfigDict:
  """A `config.data` block: dataset `name`, its generator settings (empty
  for a prepared directory), the standard splits; `extra` adds fields.
  shuffle_buffer: 0 (default) makes every training epoch a uniform random
  permutation of the clips (the AVVP reference code's DataLoader(shuffle=
  True); AVE's supervised_main.py keeps a fixed order: `order="fixed"`);
  N > 0 reads the shards in a seeded order through an N-clip buffer.
  extra_train_splits: splits also trained on (e.g. AVE's background-only
  `train_noisy`); the trainer refuses a dataset without one of them."""
  return ml_collections.ConfigDict({
      "name": name, "data_dir": data_dir, "cache_dir": "", "num_shards": 8,
      "train_split": "train", "val_split": "val", "test_split": "test",
      "extra_train_splits": tuple(extra_train_splits),
      # "clip": a batch holds batch_size clips; "segment": batch_size single
      # segments (AVE cross-modality localization's reference pairs).
      "batch_unit": "clip",
      # "shuffle": a new order each epoch (shuffle_buffer); "fixed": the
      # written order every epoch (AVE's supervised_main.py).
      "order": "shuffle",
      **extra, "shuffle_buffer": shuffle_buffer,
      "synthetic": synthetic_settings})


def synthetic_data(**overrides) -> ml_collections.ConfigDict:
  """The built-in synthetic LLP-shaped dataset (no downloads); `synthetic`
  holds every `avjax.data.synthetic.avvp.SyntheticConfig` setting."""
  return data_block("synthetic", generator_settings(synthetic.SyntheticConfig,
                                                    **overrides))


def llp_data(data_dir: str = "") -> ml_collections.ConfigDict:
  """LLP converted by `python -m avjax.prepare llp` (same keys as synthetic)."""
  return data_block("llp", {}, data_dir)


# set_data's names; "synthetic_real": the synthetic set with the feature
# statistics of the real releases (SyntheticConfig.feature_stats="real").
# "own": a dataset of your own videos (`python -m avjax.prepare own
# --videos=DIR --labels=CSV`), weak labels only: validated and tested on its
# `val` split by tagging mAP (override data.test_split when it has a test
# split with per-segment truth).
DATA_NAMES = ("synthetic", "synthetic_real", "llp", "own")
SYNTHETIC_NAMES = {"synthetic": "unit", "synthetic_real": "real"}


def set_data(c: ml_collections.ConfigDict, name: str) -> None:
  """Sets `c.data` by name; the synthetic sets also get their short
  schedule (6 epochs, lr decay after 4). LLP keeps the reference schedule."""
  if name in SYNTHETIC_NAMES:
    c.data = synthetic_data(feature_stats=SYNTHETIC_NAMES[name])
    c.num_epochs = 6
    c.optim.decay_every_epochs = 4
  elif name == "llp":
    c.data = llp_data()
  elif name == "own":
    c.data = data_block("own", {})
    c.data.test_split = "val"
    c.eval.best_metric = "map"
  else:
    raise ValueError(f"data={name!r}; valid: "
                     f"{', '.join(repr(n) for n in DATA_NAMES)}")


def avvp_net(**overrides) -> ml_collections.ConfigDict:
  """HAN's reference model settings (han_notes.md)."""
  cfg = ml_collections.ConfigDict({
      "name": "avvp_net", "d_model": 512, "num_layers": 1, "num_heads": 1,
      "d_ff": 512, "dropout": 0.1, "cross_attention": True,
      "input_modalities": "av", "use_frames": True, "use_motion": True,
      "pool_first": True, "fused_attention": True, "dtype": "float32",
      # Parameter initialisers: "torch" (PyTorch's defaults, those of the
      # official code; see avjax/models/inits.py) or "flax".
      "init_scheme": "torch",
      # Cross-modal learning (Lamba et al. 2021); all off is HAN.
      "global_context": False, "separate_self_attention": False,
      "skip": False, "shared_fc": False, "adversarial": False,
      # Official-code forms of cross-modal learning (configs/avvp_crossmodal
      # `form=reference`): GCAA's `[0]` (segment 0's attention output added
      # to every segment), the discriminator's BatchNorm1d ("batch") and the
      # ReLU before its gradient reversal.
      "gcaa_first_segment": False, "disc_norm": "layer", "disc_relu": False,
      # VEBA (Li et al. 2022): per-modality multi-head self-attention
      # encoder layers before the hybrid attention (0: none, HAN).
      "modality_encoder_layers": 0, "modality_encoder_heads": 8,
      # AVG pretraining (Lamba et al. 2021): avg_layers > 0 puts the AVG
      # transformer encoder in front of the hybrid attention; init_from: a
      # pretraining workdir whose `avg_encoder` initialises it (frozen with
      # freeze_pretrained).
      "avg_layers": 0, "init_from": "", "freeze_pretrained": False})
  cfg.update(overrides)
  return cfg


def avvp_base() -> ml_collections.ConfigDict:
  """Everything but the data/model blocks of a weakly-supervised AVVP run."""
  c = ml_collections.ConfigDict()
  c.experiment_name = "avvp"
  c.trainer = "avvp_weak"
  c.seed = 0
  c.batch_size = 16
  c.eval_batch_size = 64
  c.num_epochs = 40
  c.max_steps = 0
  c.optim = ml_collections.ConfigDict(
      {"lr": 3e-4, "decay_every_epochs": 10, "decay_factor": 0.1,
       "grad_clip": 0.0})
  c.loss = ml_collections.ConfigDict(
      {"audio_smoothing": 0.0, "visual_smoothing": 0.1,
       "type": "han",  # or "han_nce": plus MA's temporal contrastive term
       "nce_weight": 1.0, "nce_tau": 0.2, "nce_smoothing": 0.1,
       "use_modality_labels": False,  # True: train on refined labels (MA)
       # ... a dropped label's target: "negative" (smoothed like an absent
       # class) or "zero" (MA's reference); global_drops_with_audio: the
       # global target is 0 where the audio label was dropped.
       "dropped_target": "negative", "global_drops_with_audio": False,
       # type "crossmodal": global + modality_weight * (audio + visual)
       # + adv_weight * discriminator BCE (Lamba et al. 2021), whose
       # gradient reversal is grl_scale x the DANN schedule (0: none).
       "modality_weight": 0.3, "adv_weight": 0.3, "grl_scale": 1.0,
       # types "veba"/"veba_shared": the fraction of train clips with their
       # video labels (the others use their audio labels).
       "video_label_fraction": 1.0})
  c.eval = ml_collections.ConfigDict(
      {"evaluator": "avvp_f1", "gating": "global", "threshold": 0.5,
       "best_metric": "seg_type"})
  c.table_keys = ["seg_a", "seg_v", "seg_av", "seg_type", "seg_event",
                  "ev_a", "ev_v", "ev_av", "ev_type", "ev_event"]
  c.log_every_steps = 50
  c.keep_checkpoints = 2
  c.checkpoint_every_steps = 0  # 0: at epoch ends only
  c.restart = False
  return c


def runlocal(c: ml_collections.ConfigDict) -> None:
  """Shrinks a config so it runs in about a minute on CPU."""
  c.data.synthetic.update(num_train=256, num_val=64, num_test=64)
  c.num_epochs = 2
  c.log_every_steps = 4
  c.model.d_model = c.model.d_ff = 64
