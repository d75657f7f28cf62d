"""AVE's reference-code forms (configs/ave.py `form=reference`) beside the
paper's: the attention's per-region audio term, DMRN's linear head, the
soft-margin loss on softmax outputs, MIL max pooling (#19 item 4)."""

import types
from unittest import mock

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from avjax.losses import ave as ave_losses
from avjax.models import ave_net
from avjax.utils import pretrained
from configs import ave as ave_config

INFO = {"classes": [f"c{i}" for i in range(29)]}


class FormsTest(absltest.TestCase):

  def test_config_forms(self):
    ref = ave_config.get_config("data=ave,fusion=dmrn")
    self.assertEqual((ref.model.attention_form, ref.model.head,
                      ref.loss.form, ref.loss.pooling),
                     ("reference", "linear", "soft_margin", "max"))
    self.assertEqual(ave_config.get_config("data=ave").model.head, "mlp")
    for paper in (ave_config.get_config("data=ave,form=paper,fusion=dmrn"),
                  ave_config.get_config("fusion=dmrn")):
      self.assertEqual((paper.model.attention_form, paper.model.head,
                        paper.loss.form, paper.loss.pooling),
                       ("paper", "mlp", "softmax_ce", "mean"))
    with self.assertRaisesRegex(ValueError, "form='x'"):
      ave_config.get_config("form=x")

  def test_reference_attention_adds_the_audio_term_per_region(self):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 3, 6)).astype(np.float32)
    v = np.abs(rng.normal(size=(2, 3, 49, 8))).astype(np.float32)
    m = ave_net.AudioGuidedAttention(dim=5, hidden=49, form="reference")
    p = m.init(jax.random.PRNGKey(0), a, v)["params"]
    self.assertNotIn("bias", p["w_a"])
    out, w = m.apply({"params": p}, a, v)
    relu = lambda x: np.maximum(x, 0)
    uv = relu(v @ p["u_v"]["kernel"] + p["u_v"]["bias"])
    ua = relu(a @ p["u_a"]["kernel"] + p["u_a"]["bias"])
    # affine_v(v_t) + affine_g(a_t).unsqueeze(2): [.., 49, 49] + [.., 49, 1]
    x = np.tanh(uv @ p["w_v"]["kernel"] +
                (ua @ p["w_a"]["kernel"])[..., :, None])
    z = (x @ p["w_f"]["kernel"])[..., 0]
    want = np.exp(z - z.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    np.testing.assert_allclose(w, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out, np.einsum("btk,btkd->btd", want, v),
                               rtol=1e-5, atol=1e-5)
    paper = ave_net.AudioGuidedAttention(dim=5, hidden=49)
    pp = paper.init(jax.random.PRNGKey(0), a, v)["params"]
    self.assertIn("bias", pp["w_a"])  # the paper form keeps its old params
    with self.assertRaisesRegex(ValueError, "att_hidden == 49"):
      ave_net.AudioGuidedAttention(5, 7, "reference").init(
          jax.random.PRNGKey(0), a, v)

  def test_dmrn_linear_head(self):
    cfg = ave_config.get_config("data=ave,fusion=dmrn").model
    cfg.update(lstm_hidden=4, att_dim=8, fusion_dim=8)
    x = {"audio": jnp.ones((1, 3, 6)), "visual_map": jnp.ones((1, 3, 7, 7, 4)),
         "segment_mask": jnp.ones((1, 3))}
    p = ave_net.build(cfg, INFO).init(jax.random.PRNGKey(0), x)["params"]
    self.assertEqual(set(p["head"]), {"Dense_1"})
    self.assertEqual(p["head"]["Dense_1"]["kernel"].shape, (8, 29))
    self.assertEqual(ave_net.check(ave_config.model(
        attention_form="reference", att_hidden=5)), [
            "model.attention_form='reference' needs model.att_hidden=49 "
            "(one per 7x7 region), got 5"])

  def test_soft_margin_on_softmax_and_max_pooling(self):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 10, 29)).astype(np.float32)
    seg = np.eye(29)[rng.integers(0, 29, size=(2, 10))]
    labels = np.eye(29)[[3, 28]]
    mask = np.ones((2, 10), np.float32)
    cfg = ave_config.get_config("data=ave")
    batch = {"seg_audio": jnp.asarray(seg), "labels": jnp.asarray(labels),
             "segment_mask": jnp.asarray(mask)}
    out = {"logits": jnp.asarray(logits)}

    def torch_soft_margin(x, y):  # nn.MultiLabelSoftMarginLoss, by hand
      ls = lambda z: -np.log1p(np.exp(-z))
      return (-(y * ls(x) + (1 - y) * ls(-x))).mean()

    softmax = lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    got = ave_losses.loss_fn(out, batch, config=cfg)["loss"]
    np.testing.assert_allclose(got, torch_soft_margin(softmax(logits), seg),
                               rtol=1e-5)
    cfg.loss.type = "mil"
    got = ave_losses.loss_fn(out, batch, config=cfg)["loss"]
    np.testing.assert_allclose(
        got, torch_soft_margin(softmax(logits.max(1)), labels), rtol=1e-5)


  @pytest.mark.slow  # two BiLSTM networks initialised (~15 s on a busy CPU)
  def test_dmrn_initialised_from_a_trained_av_att_run(self):
    x = {"audio": jnp.ones((1, 3, 6)), "visual_map": jnp.ones((1, 3, 7, 7, 4)),
         "segment_mask": jnp.ones((1, 3))}
    small = dict(lstm_hidden=4, att_dim=8, fusion_dim=8)
    att = ave_config.get_config("data=ave").model
    att.update(small)
    dmrn = ave_config.get_config("data=ave,fusion=dmrn").model
    dmrn.update(small, init_from="/runs/av_att")
    trained = ave_net.build(att, INFO).init(jax.random.PRNGKey(1), x)["params"]
    fresh = ave_net.build(dmrn, INFO).init(jax.random.PRNGKey(2), x)["params"]
    state = types.SimpleNamespace(
        params=fresh, replace=lambda params: types.SimpleNamespace(
            params=params))
    with mock.patch.object(pretrained, "load_params",
                           return_value=trained) as load:
      got = ave_net.init_params(state, dmrn).params
    load.assert_called_once_with("/runs/av_att")
    for k in ave_net.INIT_SUBTREES:
      jax.tree.map(np.testing.assert_array_equal, got[k], trained[k])
    jax.tree.map(np.testing.assert_array_equal, got["head"], fresh["head"])
    dmrn.init_from = ""
    self.assertIs(ave_net.init_params(state, dmrn), state)


if __name__ == "__main__":
  absltest.main()
