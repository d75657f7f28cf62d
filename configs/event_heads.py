"""Event-specific audio-visual fusion layers (Senocak et al., WACV 2023).

Five heads (continuous, instant, onset, visual-only, audio-only) over small
per-modality backbones, trained jointly with single labels; majority voting
(single label) and the union of the heads' top-1 labels (multi-label).

Default: the synthetic dataset whose classes differ by event type
(`avjax/data/synthetic/events.py`), ~1 min per run on 2 CPU cores:
  python -m avjax.main --config=configs/event_heads.py --workdir=/tmp/eh/five
Table 1 rows (`get_hyper("table1")`; five_heads, audio_only, visual_only,
naive_av), then the paper's Tables 1-4 from the row workdirs:
  python -m avjax.sweep --config=configs/event_heads.py --hyper=table1 \
      --workdir=/tmp/eh
  python -m avjax.projects.event_heads.analyze --workdir=/tmp/eh --out=/tmp/eh/tables
Args (`:a=b,...`): variant=five_heads|audio_only|visual_only|naive_av;
onsets=waveform|features|auto (synthetic: the stored onsets come from the
rendered waveform (default) or from the audio-feature rule; LLP/AVE: `auto`
(default) reads the dataset's `onsets` stream when it has one, else computes
the feature rule in the model; `features` always computes the rule,
`waveform` requires the `onsets` stream added by
`python -m avjax.data.onsets --audio_dir=WAVS`, which uses a clip's raw audio
when its WAV is there and reports how many clips got no onset);
data=synthetic|llp|ave; runlocal.
LLP (multi-label, trained with one label per clip):
  python -m avjax.main --config=configs/event_heads.py:data=llp \
      --config.data.data_dir=DIR --workdir=...
AVE (the paper's Table 1; `python -m avjax.prepare ave ...`): one event per
clip plus background; the visual backbone reads AVE's `visual_map` (VGG-19
pool5 maps, averaged over the 7x7 grid), a clip is trained on its event
class (`loss.background_last`: the background only for background-only
clips), onsets as LLP's (`auto`: stored ones after `avjax.data.onsets
--audio_dir`, else the feature rule):
  python -m avjax.main --config=configs/event_heads.py:data=ave \
      --config.data.data_dir=DIR --workdir=...
"""

import ml_collections

from avjax.data.synthetic import events as synthetic_events
from configs import ave as ave_config
from configs import common

VARIANTS = {
    "five_heads": ("continuous", "instant", "onset", "visual", "audio"),
    "audio_only": ("audio",),
    "visual_only": ("visual",),
    "naive_av": ("continuous",),
}
TABLE_KEYS = ("acc", "acc_continuous", "acc_instant", "acc_onset",
              "acc_visual", "acc_audio", "f1_union", "card_union",
              "f1_top1", "f1_top2", "f1_top3")


def events_data(onsets: str) -> ml_collections.ConfigDict:
  """The synthetic event-type set; `synthetic` holds every
  `synthetic_events.SyntheticEventsConfig` setting."""
  return common.data_block(
      "synthetic_events", common.generator_settings(
          synthetic_events.SyntheticEventsConfig, onsets=onsets),
      shuffle_buffer=4096)


def get_config(arg=None):
  arg = common.parse_arg(arg, variant="five_heads", onsets="",
                         data="synthetic", runlocal=False)
  arg.onsets = arg.onsets or ("waveform" if arg.data == "synthetic" else
                              "auto")
  if arg.variant not in VARIANTS:
    raise ValueError(f"variant={arg.variant!r}; valid: {sorted(VARIANTS)}")
  if arg.onsets not in ("waveform", "features", "auto"):
    raise ValueError(f"onsets={arg.onsets!r}; valid: 'waveform', "
                     "'features', 'auto' (not synthetic)")
  if arg.onsets == "auto" and arg.data == "synthetic":
    raise ValueError("onsets='auto' is for data=llp|ave; the synthetic set "
                     "takes 'waveform' or 'features'")
  c = common.avvp_base()  # schedule/checkpoint fields; loss, eval replaced
  c.experiment_name = f"event_heads_{arg.variant}"
  c.trainer = "event_heads"
  c.batch_size, c.eval_batch_size, c.num_epochs = 64, 128, 12
  c.optim.update(lr=1e-3, decay_every_epochs=8)
  c.model = ml_collections.ConfigDict({
      "name": "event_heads", "heads": list(VARIANTS[arg.variant]),
      "d_model": 64,
      "num_layers": 2, "dropout": 0.1,
      # Instant layer: k = instant_k if > 0, else ceil(instant_ratio * T).
      "instant_k": 0, "instant_ratio": 0.1,
      # "stored": the dataset's `onsets` stream; "features": the audio-feature
      # rule of avjax.data.onsets, computed in the model; "auto": stored when
      # the dataset has the stream, else features.
      "onset_source": "stored", "onset_threshold": 0.25,
      # The visual stream: "visual" (frames), AVE's "visual_map"/"visual_vec".
      "visual_key": "visual", "dtype": "float32"})
  # "hash": a multi-label training clip keeps one label chosen by its id.
  c.loss = ml_collections.ConfigDict({"type": "event_heads",
                                      "single_label": "hash",
                                      "background_last": False})
  c.eval = ml_collections.ConfigDict({"evaluator": "event_heads",
                                      "best_metric": "acc"})
  c.table_keys = list(TABLE_KEYS)
  if arg.data == "synthetic":
    c.data = events_data(arg.onsets)
  elif arg.data == "llp":
    c.data = common.llp_data()
    c.model.onset_source = {"waveform": "stored"}.get(arg.onsets,
                                                      arg.onsets)
    c.model.d_model = 256
    c.num_epochs, c.optim.decay_every_epochs = 20, 10
  elif arg.data == "ave":
    c.data = ave_config.data("ave", weak=False)
    c.model.visual_key = "visual_map"
    c.model.onset_source = {"waveform": "stored"}.get(arg.onsets,
                                                      arg.onsets)
    c.model.d_model = 256
    c.loss.background_last = True
    c.num_epochs, c.optim.decay_every_epochs = 20, 10
  else:
    raise ValueError(f"data={arg.data!r}; valid: 'synthetic', 'llp', 'ave'")
  if arg.runlocal:
    c.data.synthetic.update(num_train=512, num_val=64, num_test=64)
    c.num_epochs, c.log_every_steps = 2, 4
    c.model.d_model = 32
  return c


TABLE1 = ("audio_only", "visual_only", "naive_av", "five_heads")


# Published numbers (%) of Senocak et al. 2023
# (/work/shared/papers/event_specific_fusion_layers.md) for the Table 1 rows:
# `acc` from Table 1's AVE line (Audio Only, Vision Only, Naive AV, Ours; the
# only Table 1 set avjax reads, data=ave; VGGSound/Kinetics-Sound/Kinetics
# are left out); `f1_*` from Table 2 (LLP trained with one label a clip,
# data=llp; printed as fractions: 0.72 -> 72.0): Ours' union of the heads'
# labels and Naive AV's Top-K (Top-4/5, 0.56/0.50, have no avjax column).
PAPER = {"audio_only": {"acc": 79.1}, "visual_only": {"acc": 76.1},
         "naive_av": {"acc": 86.0, "f1_top1": 66.0, "f1_top2": 70.0,
                      "f1_top3": 63.0},
         "five_heads": {"acc": 87.8, "f1_union": 72.0}}


def get_hyper(h):
  """table1: the paper's Table 1 rows (its Table 2 compares five_heads'
  f1_union with naive_av's f1_top<K>); table1_seeds: those rows at seeds
  0, 1, 2 in s<seed>/<row> (analyse each with `avjax.projects.event_heads.analyze
  --workdir=SWEEP/s<seed>`); onsets: the five heads with waveform vs
  feature-rule onsets."""
  if h == "table1":
    return [{"config": f"configs/event_heads.py:variant={v}", "name": v,
             "paper": dict(PAPER[v])} for v in TABLE1]
  if h == "table1_seeds":
    return [{"config": f"configs/event_heads.py:variant={v}",
             "name": f"{v} s{s}", "workdir": f"s{s}/{v}",
             "overrides": {"seed": s}, "paper": dict(PAPER[v])}
            for s in (0, 1, 2) for v in TABLE1]
  if h == "onsets":
    return [{"config": f"configs/event_heads.py:onsets={o}",
             "name": f"five_heads_{o}"} for o in ("waveform", "features")]
  raise ValueError(f"hyper={h!r}; valid: 'table1', 'table1_seeds', "
                   "'onsets'")
