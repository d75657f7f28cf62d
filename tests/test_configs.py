"""Every config file builds (with each variant) and its model initialises."""

import glob
import importlib
import os

from absl.testing import absltest
import jax
import jax.numpy as jnp

from avjax.data import schema
from avjax.models import build

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(os.path.basename(p)[:-3] for p in glob.glob(
    os.path.join(REPO, "configs", "*.py"))
                 if not os.path.basename(p).startswith(("_", "common")))
# Every stream any model reads, at its dataset's shape (T = 10).
SPECS = schema.LLP_FEATURES + (
    schema.FeatureSpec("visual_map", 1, (7, 7, 512)),
    schema.FeatureSpec("visual_vec", 1, (512,)),
    schema.ONSETS_FEATURE)
INFO = {"classes": ["c"] * 25, "feature_specs": SPECS}
SHAPES = {sp.name: (1, 10 * sp.frames_per_segment) + sp.shape
          for sp in SPECS}
SHAPES["segment_mask"] = (1, 10)


def variants(mod):
  return ["runlocal"] + [f"runlocal,variant={v}" for v in
                         getattr(mod, "VARIANTS", {})]


class ConfigsTest(absltest.TestCase):

  def test_every_config_builds_and_initialises(self):
    self.assertNotEmpty(CONFIGS)
    for name in CONFIGS:
      mod = importlib.import_module(f"configs.{name}")
      for arg in variants(mod):
        with self.subTest(config=name, arg=arg):
          c = mod.get_config(arg)
          self.assertEqual(c.experiment_name.split("_")[0],
                           name.split("_")[0])
          # config.model.name chooses the model: each one initialises on
          # inputs of its dataset's shapes (the streams it reads). Built by
          # its module: a pipeline's top config (e.g. variant=pretrained)
          # gets `model.init_from` from its stage.
          model = build.get(c.model).build(c.model, INFO)
          x = {k: jnp.zeros(SHAPES[k]) for k in
               build.input_features(c.model) + ("segment_mask",)}
          shapes = jax.eval_shape(
              lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)
          self.assertIn("params", shapes)

  def test_every_avvp_config_takes_every_data_name(self):
    from configs import common  # pylint: disable=g-import-not-at-top
    for name in ("avvp_han", "avvp_ma", "avvp_crossmodal"):
      mod = importlib.import_module(f"configs.{name}")
      for data in common.DATA_NAMES:
        with self.subTest(config=name, data=data):
          c = mod.get_config(f"data={data}")
          self.assertEqual(c.data.name, "synthetic" if data in
                           common.SYNTHETIC_NAMES else data)
    own = importlib.import_module("configs.avvp_han").get_config("data=own")
    # Weak labels only: chosen and scored on val by tagging mAP.
    self.assertEqual((own.data.test_split, own.eval.best_metric),
                     ("val", "map"))
    self.assertEqual(own.data.data_dir, "")

  def test_event_heads_seed_rows(self):
    from configs import event_heads  # pylint: disable=g-import-not-at-top
    rows = event_heads.get_hyper("table1_seeds")
    self.assertLen(rows, 12)
    self.assertLen({r["workdir"] for r in rows}, 12)
    for r in rows:
      seed = r["overrides"]["seed"]
      self.assertEqual(r["workdir"].split("/")[0], f"s{seed}")
      c = event_heads.get_config(r["config"].split(":", 1)[1])
      self.assertIn("seed", c)
      self.assertEqual(c.experiment_name, "event_heads_" +
                       r["workdir"].split("/")[1])
    with self.assertRaisesRegex(ValueError, "table1_seeds"):
      event_heads.get_hyper("table9")

  def test_ave_synthetic_settings_are_overridable(self):
    import dataclasses  # pylint: disable=g-import-not-at-top
    from avjax.data.synthetic import ave as synthetic_ave  # pylint: disable=g-import-not-at-top
    from configs import ave  # pylint: disable=g-import-not-at-top
    fields = {f.name for f in dataclasses.fields(
        synthetic_ave.SyntheticAVEConfig)}
    c = ave.get_config("")
    self.assertEqual(set(c.data.synthetic.keys()), fields)
    self.assertEqual(synthetic_ave.SyntheticAVEConfig(**c.data.synthetic),
                     synthetic_ave.SyntheticAVEConfig())
    c = ave.get_config("runlocal")
    self.assertEqual(c.data.synthetic.num_train, 128)
    self.assertEqual(set(c.data.synthetic.keys()), fields)
    self.assertEqual(dict(ave.get_config("data=ave").data.synthetic), {})

  def test_every_synthetic_setting_is_in_the_config(self):
    # --config.data.synthetic.<field>=... reaches every generator setting,
    # and the full dict builds the generator's default.
    import dataclasses  # pylint: disable=g-import-not-at-top
    from avjax.data.synthetic import avvp as synthetic  # pylint: disable=g-import-not-at-top
    from avjax.data.synthetic import events as synthetic_events  # pylint: disable=g-import-not-at-top
    from avjax.data.synthetic import veba as synthetic_veba  # pylint: disable=g-import-not-at-top
    cases = [("avvp_han", "", synthetic.SyntheticConfig, {}),
             ("avvp_ma", "", synthetic.SyntheticConfig,
              dict(importlib.import_module("configs.avvp_ma").VISIBLE)),
             ("veba", "", synthetic_veba.VebaSyntheticConfig, {}),
             ("event_heads", "", synthetic_events.SyntheticEventsConfig, {}),
             ("event_heads", "onsets=features",
              synthetic_events.SyntheticEventsConfig, {"onsets": "features"})]
    for name, arg, cls, want in cases:
      with self.subTest(config=name, arg=arg):
        c = importlib.import_module(f"configs.{name}").get_config(arg)
        self.assertEqual(set(c.data.synthetic.keys()),
                         {f.name for f in dataclasses.fields(cls)})
        self.assertEqual(cls(**c.data.synthetic), cls(**want))
    from configs import veba  # pylint: disable=g-import-not-at-top
    self.assertEqual(dict(veba.get_config("data=veba").data.synthetic), {})

  def test_every_ave_hyper_row_loads(self):
    # Each row's config string and overrides (dotted fields, e.g.
    # data.synthetic.visual_gain) apply through the sweep's loader.
    from avjax import sweep  # pylint: disable=g-import-not-at-top
    from configs import ave  # pylint: disable=g-import-not-at-top
    hypers = ["table1", "table1_full", "table2", "table2_late", "blocks",
              "seed1", "table2_seeds", "table2_large", "table2_lag",
              "table2_lag_large", "table2_vscale", "table2_vscale_seeds",
              "table2_vscale_large", "long_v", "table1_long"]
    for h in hypers:
      rows = ave.get_hyper(h)
      self.assertNotEmpty(rows, h)
      self.assertLen({r["name"] for r in rows}, len(rows), h)  # unique
      for r in rows:
        with self.subTest(hyper=h, row=r["name"]):
          c = sweep.load_config(r["config"], True, r.get("overrides"))
          for key, value in r.get("overrides", {}).items():
            node = c
            for part in key.split("."):
              node = node[part]
            self.assertEqual(node, value)
    rows = ave.get_hyper("table2_vscale_seeds")
    self.assertLen(rows, 3 * 19)  # early 9 + late 10 fusions, 3 seeds
    self.assertEqual(rows[-1]["overrides"], {
        "data.synthetic.visual_gain": 30.0, "seed": 2})

  def test_synthetic_real_data(self):
    # data=synthetic_real: the synthetic block and schedule of data=synthetic
    # with feature_stats="real"; data=synthetic keeps the "unit" default.
    from avjax.data.synthetic import avvp as synthetic  # pylint: disable=g-import-not-at-top
    for name in ("avvp_han", "avvp_ma", "avvp_crossmodal"):
      with self.subTest(config=name):
        mod = importlib.import_module(f"configs.{name}")
        unit, real = mod.get_config(""), mod.get_config("data=synthetic_real")
        self.assertEqual(unit.data.synthetic.feature_stats, "unit")
        self.assertEqual(real.data.synthetic.feature_stats, "real")
        self.assertEqual(synthetic.SyntheticConfig(**real.data.synthetic),
                         synthetic.SyntheticConfig(**dict(
                             unit.data.synthetic, feature_stats="real")))
        real.data.synthetic.feature_stats = "unit"
        self.assertEqual(real.to_dict(), unit.to_dict())
        mod.get_config("runlocal,data=synthetic_real")
        with self.assertRaisesRegex(ValueError, "'synthetic_real'"):
          mod.get_config("data=imagenet")

  def test_unknown_argument_rejected(self):
    from configs import avvp_han  # pylint: disable=g-import-not-at-top
    with self.assertRaisesRegex(ValueError, "unknown config argument 'fast'"):
      avvp_han.get_config("fast")
    with self.assertRaisesRegex(ValueError, "variant='big'"):
      avvp_han.get_config("variant=big")


if __name__ == "__main__":
  absltest.main()
