"""AVE network (every stage, modality, attention) and AVDLN shapes."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from avjax.models import ave_net
from avjax.models import avdln
from avjax.models import build
from configs import ave as ave_config
from configs import ave_cml

B, T, C = 2, 5, 7
INFO = {"classes": [f"c{i}" for i in range(C)]}


def inputs(seed=0):
  k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
  return {"audio": jax.random.normal(k1, (B, T, 6)),
          "visual_map": jax.nn.relu(jax.random.normal(k2, (B, T, 3, 3, 8))),
          "segment_mask": jnp.ones((B, T)).at[1, 3:].set(0)}


def model(**kw):
  cfg = ave_config.model(lstm_hidden=4, att_dim=8, att_hidden=5,
                         fusion_dim=6, head_hidden=5, **kw)
  return ave_net.build(cfg, INFO)


def run(m, x=None):
  x = x or inputs()
  params = m.init(jax.random.PRNGKey(0), x)
  return m.apply(params, x), params


class AVENetTest(parameterized.TestCase):

  @parameterized.parameters(("early", "gmu"), ("late", "dmrn"),
                            ("decision", "concat"), ("late", "mrn"))
  def test_stages(self, stage, fusion):
    out, _ = run(model(stage=stage, fusion=fusion))
    self.assertEqual(out["logits"].shape, (B, T, C))
    np.testing.assert_allclose(out["prob"].sum(-1), 1.0, atol=1e-5)
    self.assertEqual(out["attention"].shape, (B, T, 9))

  @parameterized.parameters(("a", False), ("v", True), ("av", False))
  def test_modalities(self, modalities, attention):
    m = model(modalities=modalities, attention=attention)
    out, params = run(m)
    self.assertEqual(out["logits"].shape, (B, T, C))
    self.assertEqual("attention" in out, attention)
    names = set(params["params"])
    self.assertEqual("lstm_a" in names, "a" in modalities)
    self.assertEqual("lstm_v" in names, "v" in modalities)

  def test_attention_is_a_distribution_steered_by_audio(self):
    x = inputs()
    m = model()
    out, params = run(m, x)
    np.testing.assert_allclose(out["attention"].sum(-1), 1.0, atol=1e-5)
    x2 = dict(x, audio=x["audio"] * 3.0)
    out2 = m.apply(params, x2)
    self.assertGreater(float(jnp.abs(out2["attention"] -
                                     out["attention"]).max()), 1e-4)

  def test_dmrfe_averages_branch_probabilities(self):
    out, params = run(model(fusion="dmrfe"))
    self.assertEqual(out["branch_logits"].shape, (2, B, T, C))
    np.testing.assert_allclose(
        out["prob"], jax.nn.softmax(out["branch_logits"], -1).mean(0),
        atol=1e-6)
    self.assertIn("fusion_1", params["params"])

  def test_pooled_visual_equals_region_mean(self):
    m = model(modalities="v", attention=False)
    x = inputs()
    params = m.init(jax.random.PRNGKey(0), x)
    vec = dict(x, visual_vec=x["visual_map"].mean((2, 3)))
    out = m.apply(params, x)
    m_vec = model(modalities="v", attention=False, visual_key="visual_vec")
    np.testing.assert_allclose(m_vec.apply(params, vec)["logits"],
                               out["logits"], atol=1e-5)

  def test_fusion_dropout_only_when_training(self):
    x = inputs()
    m = model(fusion_dropout=0.5)
    out, params = run(m, x)
    base, _ = run(model(), x)  # same params: dropout adds none
    np.testing.assert_allclose(out["logits"], base["logits"], atol=1e-6)
    drop = lambda k: m.apply(params, x, train=True,
                             rngs={"dropout": jax.random.PRNGKey(k)})
    self.assertGreater(float(jnp.abs(drop(1)["logits"] -
                                     out["logits"]).max()), 1e-3)
    np.testing.assert_array_equal(drop(1)["logits"], drop(1)["logits"])

  def test_config_errors(self):
    cfg = ave_config.model(stage="middle", fusion="dmrfe", num_blocks=2,
                           fusion_dropout=1.0)
    errors = " ".join(ave_net.check(cfg))
    self.assertIn("model.fusion_dropout=1.0", errors)
    self.assertIn("model.stage='middle'", errors)
    self.assertIn("dmrfe' needs model.stage='late'", errors)
    with self.assertRaisesRegex(ValueError, "only .* stack blocks"):
      build.build(ave_config.model(fusion="gmu", num_blocks=2), INFO)
    self.assertEqual(ave_net.input_features(ave_config.model(
        modalities="v", attention=True)), ("audio", "visual_map"))
    self.assertEqual(ave_net.input_features(ave_config.model(
        modalities="v", attention=False)), ("visual_map",))


class AVEInitTest(absltest.TestCase):
  """configs/ave.py's reference form initialises as the official att_Net
  and TBMRF_Net: Linear weights Xavier-uniform (init_weights), biases
  PyTorch's U(+-1/sqrt(fan_in)), DMRN's U_a/U_v PyTorch's Linear default,
  the BiLSTMs nn.LSTM's U(+-1/sqrt(hidden)) (the cell's bias is b_ih + b_hh:
  variance 2 bound^2 / 3)."""

  def init(self, arg):
    cfg = ave_config.get_config(arg).model
    x = {"audio": jnp.zeros((1, 10, 128)),
         "visual_map": jnp.zeros((1, 10, 7, 7, 512)),
         "segment_mask": jnp.ones((1, 10))}
    m = ave_net.build(cfg, {"classes": [str(i) for i in range(29)]})
    return cfg, m.init(jax.random.PRNGKey(0), x)["params"]

  def test_reference_form_uses_the_official_initialisation(self):
    cfg, p = self.init("data=ave")
    self.assertEqual(cfg.init_scheme, "torch")
    k = np.asarray(p["attention"]["u_v"]["kernel"])  # affine_video 512->512
    bound = np.sqrt(6.0 / (512 + 512))
    self.assertLessEqual(np.abs(k).max(), bound)
    self.assertAlmostEqual(k.var(), bound**2 / 3, delta=0.03 * bound**2)
    b = np.asarray(p["attention"]["u_v"]["bias"])
    self.assertLessEqual(np.abs(b).max(), 1 / np.sqrt(512))
    self.assertGreater(np.abs(b).max(), 0.5 / np.sqrt(512))
    h = cfg.lstm_hidden
    cell = p["lstm_a"]["OptimizedLSTMCell_0"]
    rk = np.asarray(cell["hi"]["kernel"])
    self.assertLessEqual(np.abs(rk).max(), 1 / np.sqrt(h))
    self.assertAlmostEqual(rk.var(), 1 / (3 * h), delta=0.1 / (3 * h))
    bias = np.concatenate([np.asarray(cell[g]["bias"]) for g in
                           ("hi", "hf", "hg", "ho")])
    self.assertAlmostEqual(bias.var(), 2 / (3 * h), delta=0.2 / (3 * h))
    _, q = self.init("data=ave,fusion=dmrn")
    u = np.asarray(q["fusion"]["block_0"]["u_a1"]["kernel"])
    self.assertLessEqual(np.abs(u).max(), 1 / np.sqrt(u.shape[0]))

  def test_paper_form_keeps_flax_defaults(self):
    cfg, p = self.init("")
    self.assertEqual(cfg.init_scheme, "flax")
    np.testing.assert_array_equal(p["attention"]["u_v"]["bias"], 0.0)
    k = np.asarray(p["attention"]["u_v"]["kernel"])
    self.assertAlmostEqual(k.var(), 1 / 512, delta=0.05 / 512)


class AVDLNTest(absltest.TestCase):

  def test_distances(self):
    m = avdln.AVDLN(hidden=8, out=3, visual_key="visual_map")
    x = inputs()
    out = m.apply(m.init(jax.random.PRNGKey(0), x), x)
    self.assertEqual(out["dist"].shape, (B, T, T))
    want = jnp.linalg.norm(out["audio_emb"][:, 2] - out["visual_emb"][:, 4],
                           axis=-1)
    np.testing.assert_allclose(out["dist"][:, 2, 4], want, rtol=1e-5)

  def test_keras_init_is_glorot_uniform_with_zero_bias(self):
    """The reference's Keras Dense: U(+-sqrt(6 / (fan_in + fan_out))),
    variance bound^2 / 3, zero bias; flax's LeCun normal has variance
    1 / fan_in (larger tails, no bound)."""
    x = {"audio": jnp.zeros((1, 2, 128)), "visual_vec": jnp.zeros((1, 2, 512))}
    for scheme in ("keras", "flax"):
      p = avdln.AVDLN(128, 64, "visual_vec", scheme).init(
          jax.random.PRNGKey(0), x)["params"]
      k = np.asarray(p["visual"]["Dense_0"]["kernel"])  # 512 -> 128
      np.testing.assert_array_equal(p["visual"]["Dense_0"]["bias"], 0.0)
      if scheme == "keras":
        bound = np.sqrt(6.0 / (512 + 128))
        self.assertLessEqual(np.abs(k).max(), bound)
        self.assertAlmostEqual(k.var(), bound**2 / 3, delta=0.05 * bound**2)
      else:
        self.assertAlmostEqual(k.var(), 1.0 / 512, delta=0.05 / 512)
    self.assertEqual(ave_cml.get_config("data=ave").model.init_scheme,
                     "keras")
    self.assertEqual(ave_cml.get_config().model.init_scheme, "flax")

  def test_distance_floors(self):
    """"keras": sqrt(max(d^2, 1e-7)) as the reference's euclidean_distance
    (value sqrt(1e-7) and zero gradient below the floor); "add":
    sqrt(d^2 + 1e-9); equal (to 1e-6 relative) away from 0."""
    x = jnp.array([[0.0, 0.0], [3.0, 4.0]])
    y = jnp.array([[1e-5, 0.0], [0.0, 0.0]])
    k = avdln.euclidean(x, y, floor="keras")
    a = avdln.euclidean(x, y, floor="add")
    np.testing.assert_allclose(k, [np.sqrt(1e-7), 5.0], rtol=1e-6)
    np.testing.assert_allclose(a, [np.sqrt(1e-10 + 1e-9), 5.0], rtol=1e-6)
    grad = jax.grad(lambda x: avdln.euclidean(x, y, floor="keras")[0])(x)
    np.testing.assert_array_equal(grad, 0.0)
    self.assertGreater(float(jnp.abs(jax.grad(
        lambda x: avdln.euclidean(x, y)[0])(x)).sum()), 0.0)
    self.assertEqual(ave_cml.get_config("data=ave").model.distance_floor,
                     "keras")
    self.assertEqual(ave_cml.get_config().model.distance_floor, "add")


if __name__ == "__main__":
  absltest.main()
