"""AVE event localization (Tian et al. 2018), Tables 1-2.

Default (built-in synthetic AVE-like dataset, A+V-att, late concat fusion):
  python -m avjax.main --config=configs/ave.py --workdir=/tmp/avjax/ave
One-minute smoke run:
  python -m avjax.main --config=configs/ave.py:runlocal --workdir=/tmp/x
Arguments (`:k=v,...`):
  variant   a | v | v_att | av | av_att   (Table 1 columns; default av_att)
  weak      MIL training on video labels (+ background-only clips): W-*
  fusion    additive | max_pooling | gated | bilinear | gmu |
            gated_bilinear | concat | mrn | dmrn | dmrfe   (Table 2)
  stage     early | late | decision                        (Table 2)
  blocks    stacked MRN/DMRN blocks (default 1)
  data      synthetic (default) | ave (`python -m avjax.prepare ave ...`,
            then --config.data.data_dir=DIR; the reference protocol,
            `PROTOCOL`: fixed clip order, validation every 5 epochs with
            strict improvement, x0.1 from update 15,000; 300 epochs, W-*
            250)
  form      reference (default with data=ave) | paper (default otherwise):
            the official code's forms (YapengTian/AVE-ECCV18) or the
            paper's, where they differ (`FORMS`):
              reference  audio-guided attention as the code computes it
                         (affine_g(a) entry i added to region i, no biases;
                         model.attention_form), DMRN's output straight to
                         Linear(256, C) (model.head=linear, TBMRF_Net),
                         MultiLabelSoftMarginLoss on the softmax outputs
                         (loss.form=soft_margin), MIL max pooling over the
                         segment scores (loss.pooling=max), the official
                         initialisation (model.init_scheme=torch: Xavier
                         Linear weights, PyTorch LSTM/bias defaults)
              paper      Eq. 4's attention (audio term added to every
                         region), ReLU -> 64 -> ReLU head, softmax cross-
                         entropy, MIL mean pooling (Eq. 7)
            The reference fine-tunes DMRN from the trained A+V-att model
            (supervised_main.py's comment): train A+V-att first, then
            `:data=ave,fusion=dmrn --config.model.init_from=AV_ATT_WORKDIR`
            (its latest checkpoint's attention and BiLSTMs); without it
            DMRN trains from scratch.
Tables (each row's test accuracy into DIR/table.md):
  python -m avjax.sweep --config=configs/ave.py --hyper=table1 --workdir=DIR
  python -m avjax.sweep --config=configs/ave.py --hyper=table2 --workdir=DIR
  (also `blocks`: DMRN with 1-3 stacked blocks; `seed1`: the close
  comparisons A, A+V, W-A, W-A+V, late concat/DMRN at seed 1;
  `table2_seeds`: early/late of every fusion at seeds 0-2 and decision at
  seed 0, summarised by `python -m avjax.projects.ave.seeds --workdir=DIR`;
  `long_v`: V and W-V trained 40 epochs instead of 8; `table1_long`: all
  of Table 1 on that schedule).
Bilinear, gated bilinear and MRN layer-normalise their inputs
(model.fusion_input_norm=True; False is the unnormalised form, which
scored 62-67 at the late stage: see avjax/models/ave_fusion.py).
Paper (AVE test accuracy %): A 59.5, V 55.3, V-att 58.6, A+V 71.4, A+V-att
72.7; W-A 53.4, W-V 52.9, W-V-att 55.6, W-A+V 63.7, W-A+V-att 66.7; late
DMRN 73.1, DMRFE 73.3 (Table 2 in papers/ave_event_localization.md).
"""

import re

import ml_collections

from avjax.data.synthetic import ave as synthetic_ave
from avjax.models import ave_fusion
from configs import common

VARIANTS = {
    "a": {"modalities": "a", "attention": False},
    "v": {"modalities": "v", "attention": False},
    "v_att": {"modalities": "v", "attention": True},
    "av": {"modalities": "av", "attention": False},
    "av_att": {"modalities": "av", "attention": True},
}
ROW_NAMES = {"a": "A", "v": "V", "v_att": "V-att", "av": "A+V",
             "av_att": "A+V-att"}
STAGES = ("early", "late", "decision")


def model(**overrides) -> ml_collections.ConfigDict:
  """The AVE network, in the paper's forms (`FORMS["reference"]` has the
  official code's)."""
  m = ml_collections.ConfigDict({
      "name": "ave_net", "modalities": "av", "attention": True,
      "fusion": "concat", "stage": "late", "lstm_hidden": 128,
      "att_dim": 512, "att_hidden": 49, "fusion_dim": 256, "num_blocks": 1,
      "ensemble": 2, "head_hidden": 64, "visual_key": "visual_map",
      # bilinear, gated_bilinear, mrn: LayerNorm on the fusion's inputs
      # (ave_fusion docstring); False reproduces the unnormalised form.
      "fusion_input_norm": True,
      # dropout on the fused features while training (the reference: none).
      "fusion_dropout": 0.0,
      # "paper" (Eq. 4) or "reference" (the code's per-region audio term).
      "attention_form": "paper",
      # "mlp" (ReLU -> head_hidden -> ReLU -> C, the reference att_Net's) or
      # "linear" (-> C, the reference TBMRF_Net's DMRN head).
      "head": "mlp",
      # "flax" (flax's initialisers) or "torch" (the reference's: Xavier-
      # uniform Linear weights from init_weights, PyTorch default biases
      # and nn.LSTM's U(+-1/sqrt(hidden)); models/inits.py)
      "init_scheme": "flax",
      # a trained run's workdir whose attention and BiLSTMs initialise this
      # one (the reference fine-tunes DMRN from A+V-att: ave_net.init_params)
      "init_from": ""})
  m.update(overrides)
  return m


def data(name: str, weak: bool) -> ml_collections.ConfigDict:
  if name not in ("synthetic", "ave"):
    raise ValueError(f"data={name!r}; valid: 'synthetic', 'ave'")
  return common.data_block(
      "synthetic_ave" if name == "synthetic" else "ave",
      common.generator_settings(synthetic_ave.SyntheticAVEConfig)
      if name == "synthetic" else {}, shuffle_buffer=256,
      # MIL training also sees the background-only clips (when present).
      extra_train_splits=("train_noisy",) if weak else ())


def base(experiment_name: str) -> ml_collections.ConfigDict:
  """Everything but the model/data/loss blocks (reference schedule)."""
  c = ml_collections.ConfigDict()
  c.experiment_name = experiment_name
  c.seed = 0
  c.batch_size = 64
  c.eval_batch_size = 64
  c.num_epochs = 300
  c.max_steps = 0
  # supervised_main.py: StepLR(step_size=15000) stepped before every
  # update (utils/optim.make_schedule); decay_every_epochs applies when
  # decay_every_steps is 0 (the synthetic schedule).
  c.optim = ml_collections.ConfigDict(
      {"lr": 1e-3, "decay_every_steps": 15000,
       "decay_every_epochs": 15000 / 52, "decay_factor": 0.1,
       "grad_clip": 0.0})
  c.log_every_steps = 20
  c.keep_checkpoints = 2
  c.checkpoint_every_steps = 0
  c.restart = False
  return c


# The official code's forms and the paper's (module docstring: `form`).
FORMS = {
    "reference": {"model.attention_form": "reference",
                  "model.head": "linear for DMRN, else mlp",
                  "loss.form": "soft_margin", "loss.pooling": "max",
                  "model.init_scheme": "torch"},
    "paper": {"model.attention_form": "paper", "model.head": "mlp",
              "loss.form": "softmax_ce", "loss.pooling": "mean",
              "model.init_scheme": "flax"},
}


# How supervised_main.py / weak_supervised_main.py train, with data=ave
# (any form): batches in the order file's order every epoch, never shuffled
# (the last incomplete batch unused; the weak trainer's background-only
# clips after the training clips); validation after 0-based epochs 0, 5,
# 10, ... (`if epoch % 5 == 0`), the checkpoint kept only on a strict
# improvement (`val_acc > best_val_acc`); the learning rate x0.1 from the
# 15,000th update (base: optim.decay_every_steps).
PROTOCOL = {"data.order": "fixed", "eval.every_epochs": 5,
            "eval.tie_replaces_best": False}


def get_config(arg=None):
  arg = common.parse_arg(arg, variant="av_att", weak=False, fusion="concat",
                         stage="late", blocks=1, data="synthetic", form="",
                         runlocal=False)
  if arg.variant not in VARIANTS:
    raise ValueError(f"variant={arg.variant!r}; valid: {sorted(VARIANTS)}")
  form = arg.form or ("reference" if arg.data == "ave" else "paper")
  if form not in FORMS:
    raise ValueError(f"form={form!r}; valid: {sorted(FORMS)}")
  c = base("ave_" + "_".join(
      [("w_" if arg.weak else "") + arg.variant, arg.stage, arg.fusion] +
      ([f"x{arg.blocks}"] if arg.blocks != 1 else [])))
  c.trainer = "ave_supervised"
  c.model = model(fusion=arg.fusion, stage=arg.stage, num_blocks=arg.blocks,
                  **VARIANTS[arg.variant])
  c.data = data(arg.data, arg.weak)
  ref = form == "reference"
  c.model.attention_form = "reference" if ref else "paper"
  c.model.head = "linear" if ref and arg.fusion == "dmrn" else "mlp"
  c.model.init_scheme = "torch" if ref else "flax"
  c.loss = ml_collections.ConfigDict(
      {"type": "mil" if arg.weak else "segment",
       # MIL pooling of the segment scores: "mean" (paper Eq. 7) or "max"
       # (the reference's models_weakly.py: MaxPool1d over the 10 segments)
       "pooling": "max" if ref else "mean",
       # "softmax_ce" or "soft_margin" (losses/ave.py: the reference's
       # MultiLabelSoftMarginLoss on the softmax outputs)
       "form": "soft_margin" if ref else "softmax_ce"})
  c.eval = ml_collections.ConfigDict({"evaluator": "ave_acc",
                                      "best_metric": "acc",
                                      "every_epochs": 1,
                                      "tie_replaces_best": True})
  if arg.data == "ave":  # the official training protocol (PROTOCOL)
    c.update_from_flattened_dict(PROTOCOL)
    if arg.weak:  # weak_supervised_main.py: --nb_epoch 250
      c.num_epochs = 250
  c.table_keys = ["acc", "acc_event", "acc_background", "att_mass",
                  "att_uniform"]
  if arg.data == "synthetic":  # a short schedule and a lighter attention MLP
    c.batch_size = 32
    c.num_epochs = 8
    c.optim.decay_every_steps = 0
    c.optim.decay_every_epochs = 6
    c.model.att_dim = 64
  if arg.runlocal:
    runlocal(c)
    c.model.update(lstm_hidden=32, att_dim=32, fusion_dim=64)
  return c


def runlocal(c: ml_collections.ConfigDict) -> None:
  """A tiny synthetic dataset and 2 epochs: about a minute on CPU."""
  c.data.synthetic.update({"num_train": 128, "num_background": 16,
                           "num_val": 32, "num_test": 32})
  c.batch_size = c.eval_batch_size = 32
  c.num_epochs = 2
  c.log_every_steps = 2


def table1():
  rows = []
  for weak in (False, True):
    for v, name in ROW_NAMES.items():
      rows.append({"config": f"configs/ave.py:variant={v}" +
                             (",weak" if weak else ""),
                   "name": ("W-" if weak else "") + name})
  return rows


def table2():
  rows = []
  for stage in STAGES:
    for f in ave_fusion.NAMES:
      if f == "dmrfe" and stage != "late":
        continue
      rows.append({"config": f"configs/ave.py:fusion={f},stage={stage}",
                   "name": f"{stage}-{f}"})
  return rows


# The close comparisons of the findings (A+V vs A, W-A+V vs W-A, late DMRN
# vs late concat), rerun at other seeds by hyper `seedK`.
CLOSE_ROWS = (("A", "variant=a"), ("A+V", "variant=av"),
              ("W-A", "variant=a,weak"), ("W-A+V", "variant=av,weak"),
              ("late-concat", "fusion=concat,stage=late"),
              ("late-dmrn", "fusion=dmrn,stage=late"))


def table2_seeds(seeds=(0, 1, 2)):
  """Early and late rows of every fusion at each seed (seed by seed, so a
  cut sweep still holds whole seeds), then the decision rows at seed 0."""
  rows = []
  for seed in seeds:
    for r in table2():
      if not r["name"].startswith("decision-"):
        rows.append({**r, "name": f"{r['name']} s{seed}",
                     "overrides": {"seed": seed}})
  return rows + [{**r, "name": f"{r['name']} s0", "overrides": {"seed": 0}}
                 for r in table2() if r["name"].startswith("decision-")]


# Plain V (global average pooling, no attention) is still learning at the
# end of the 8-epoch synthetic schedule; hyper `long_v` trains V and W-V 5x
# longer (40 epochs, lr x0.1 after 30), not a default.
LONG = {"num_epochs": 40, "optim.decay_every_epochs": 30}


# AVE's train split has 3339 clips; the synthetic default trains on 800 (a
# short CPU schedule). Hyper `table2_large` reruns Table 2 on 3200 train clips
# (4x the steps of each row): the multiplicative late fusions (bilinear,
# gated bilinear, MRN) overfit 800 clips (train loss 0.03, test ~70-85).
LARGE_TRAIN = {"data.synthetic.num_train": 3200}


def table2_large():
  return [dict(r, name=r["name"] + " n3200", overrides=dict(LARGE_TRAIN))
          for r in table2()]


# Hyper `table2_lag`: Table 2 with audio-visual misalignment in the synthetic
# data (`av_lag`: each clip's audio shifted by -1..1 segments, labels and
# visual not), the reason the paper gives for late > early fusion. Early and
# late of each fusion side by side, decision rows last.
LAG = {"data.synthetic.av_lag": 1}


def table2_lag():
  rows = table2()
  paired = sorted((r for r in rows if not r["name"].startswith("decision-")),
                  key=lambda r: ave_fusion.NAMES.index(r["name"].split("-")[1]))
  return [dict(r, name=r["name"] + " lag1", overrides=dict(LAG))
          for r in paired + [r for r in rows
                             if r["name"].startswith("decision-")]]


# Hyper `table2_vscale`: Table 2 with the visual map 10x larger than the
# audio (`visual_gain` 30 instead of 3; the default makes both ~unit
# variance, real pool5 maps are unnormalised ReLU outputs): early fusion feeds
# the two scales to one BiLSTM, late fusion gives each modality its own first.
VSCALE = {"data.synthetic.visual_gain": 30.0}


def table2_vscale():
  return [dict(r, name=r["name"].replace(" lag1", " vg30"),
               overrides=dict(VSCALE)) for r in table2_lag()]


def table2_vscale_seeds(seeds=(0, 1, 2)):
  """Early and late rows of `table2_vscale` at each seed, seed by seed
  (names "<stage>-<fusion> vg30 s<seed>", tabulated by `avjax.projects.ave.seeds`)."""
  return [dict(r, name=f"{r['name']} s{seed}",
               overrides={**r["overrides"], "seed": seed})
          for seed in seeds for r in table2_vscale()
          if not r["name"].startswith("decision-")]


def table2_vscale_large():
  """`table2_vscale` on `LARGE_TRAIN` clips (the scale mismatch with enough
  clips that the multiplicative late fusions do not overfit)."""
  return [dict(r, name=r["name"] + "_n3200",
               overrides={**r["overrides"], **LARGE_TRAIN})
          for r in table2_vscale()]


def table2_lag_large():
  """`table2_lag` on `LARGE_TRAIN` clips (misaligned data; enough clips that
  the multiplicative late fusions do not overfit)."""
  return [dict(r, name=r["name"] + "_n3200",
               overrides={**r["overrides"], **LARGE_TRAIN})
          for r in table2_lag()]


def long_v():
  return [{"config": f"configs/ave.py:variant=v{w}", "name": f"{n} long",
           "overrides": dict(LONG)} for n, w in (("V", ""), ("W-V", ",weak"))]


def table1_long():
  """Table 1 with every row on the `LONG` schedule (names "<row> long";
  its V and W-V rows are `long_v`'s)."""
  return [dict(r, name=r["name"] + " long", overrides=dict(LONG))
          for r in table1()]


def seeds(seed: int):
  return [{"config": f"configs/ave.py:{arg}", "name": f"{name} s{seed}",
           "overrides": {"seed": seed}} for name, arg in CLOSE_ROWS]


# Published AVE test accuracy (%, key "acc") of each Table 1/2 row, from Tian
# et al. 2018 (ECCV), Table 1 (modalities, full and weak supervision) and
# Table 2 (fusion x stage; MP = max_pooling, MB = bilinear, GMB =
# gated_bilinear); /work/shared/papers/ave_event_localization.md. The paper
# has no number for early/decision DMRFE or for stacked blocks.
PAPER_TABLE1 = {"A": 59.5, "V": 55.3, "V-att": 58.6, "A+V": 71.4,
                "A+V-att": 72.7, "W-A": 53.4, "W-V": 52.9, "W-V-att": 55.6,
                "W-A+V": 63.7, "W-A+V-att": 66.7}
PAPER_TABLE2 = {
    stage: dict(zip(ave_fusion.NAMES, accs)) for stage, accs in (
        # additive, MP, gated, MB, GMU, GMB, concat, MRN, DMRN, DMRFE
        ("early", (59.9, 67.9, 67.9, 69.2, 70.5, 70.2, 61.0, 69.8, 68.0)),
        ("late", (71.3, 71.4, 70.5, 70.5, 71.6, 71.0, 72.7, 70.8, 73.1,
                  73.3)),
        ("decision", (70.5, 64.5, 65.2, 64.6, 67.6, 67.3, 69.7, 63.8, 70.4)))}
PAPER = {**PAPER_TABLE1, **{f"{stage}-{f}": acc for stage, accs in
                            PAPER_TABLE2.items() for f, acc in accs.items()}}


def with_paper(rows):
  """Gives each row that is a paper row (its name, less a " sK" seed suffix,
  in `PAPER`; no override but the seed) the published accuracy; rows on
  other data or schedules (n3200, lag1, vg30, long) get none."""
  for row in rows:
    base = re.sub(r" s\d+$", "", row["name"])
    if base in PAPER and set(row.get("overrides", {})) <= {"seed"}:
      row["paper"] = {"acc": PAPER[base]}
  return rows


def get_hyper(h):
  """Rows (see `hyper_rows`), each paper row with its published accuracy."""
  return with_paper(hyper_rows(h))


def hyper_rows(h):
  """Rows of a table: table1 (modalities, full/weak; table1_full|weak: one
  half, richest rows first), table2 (fusion x
  stage; table2_early|late|decision: one stage), blocks (stacked DMRN),
  seedK (the close comparisons `CLOSE_ROWS` at seed K, e.g. seed1),
  table2_seeds (early/late of every fusion at seeds 0-2, decision at 0),
  table2_large (Table 2 on 3200 synthetic train clips, `LARGE_TRAIN`),
  table2_lag (Table 2 with audio-visual misalignment in the data, `LAG`),
  table2_lag_large (both), table2_vscale (visual features 10x the audio's
  scale, `VSCALE`), table2_vscale_seeds (its early/late rows at seeds
  0-2), table2_vscale_large (it on 3200 clips),
  long_v (V and W-V on a 5x longer schedule), table1_long (all of Table 1
  on it)."""
  if h == "table1":
    return table1()
  if h.endswith("_rev"):  # the same rows, last first (a second worker)
    return hyper_rows(h[:-4])[::-1]
  if h in ("table1_full", "table1_weak"):  # one half of table1
    return [r for r in table1() if r["name"].startswith("W-") == (
        h == "table1_weak")][::-1]
  named = {"table2": table2, "table2_seeds": table2_seeds,
           "table2_large": table2_large, "table2_lag": table2_lag,
           "table2_lag_large": table2_lag_large,
           "table2_vscale": table2_vscale,
           "table2_vscale_seeds": table2_vscale_seeds,
           "table2_vscale_large": table2_vscale_large, "long_v": long_v,
           "table1_long": table1_long}
  if h in named:
    return named[h]()
  if h.startswith("table2_"):  # one stage, e.g. table2_late; key rows first
    rows = [r for r in table2() if r["name"].startswith(h[7:] + "-")]
    return sorted(rows, key=lambda r: r["name"].split("-")[1] not in (
        "concat", "dmrn"))
  if h == "blocks":
    return [{"config": f"configs/ave.py:fusion=dmrn,blocks={b}",
             "name": f"DMRN x{b}"} for b in (1, 2, 3)]
  if h.startswith("seed") and h[4:].isdigit():
    return seeds(int(h[4:]))
  raise ValueError(f"hyper={h!r}; valid: table1, table1_full, table1_weak, "
                   f"table2_early|late|decision, blocks, seedK, "
                   f"{', '.join(named)} (any of them + '_rev': last first)")
