"""Initialisers against PyTorch's definitions (computed analytically)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from avjax.models import avvp_net
from avjax.models import inits

D = 512


def _batch(b=2, t=10):
  return {"audio": jnp.zeros((b, t, 128)), "visual": jnp.zeros((b, t * 8, 2048)),
          "motion": jnp.zeros((b, t, 512))}


def _params(init, **kw):
  model = avvp_net.AVVPNet(init_scheme=init, **kw)
  return jax.jit(lambda r: model.init(r, _batch(), train=False))(
      jax.random.PRNGKey(0))["params"]


def _uniform_var(bound):
  return bound ** 2 / 3.0


def _check_uniform(x, bound, name):
  x = np.asarray(x, np.float64).ravel()
  assert np.abs(x).max() <= bound + 1e-7, name
  # Sample variance of n uniforms: relative sd about sqrt(0.8 / n).
  tol = 5 * math.sqrt(0.8 / x.size) + 1e-3
  assert abs(x.var() / _uniform_var(bound) - 1) < tol, (name, x.var())
  assert abs(x.mean()) < 5 * bound / math.sqrt(3 * x.size), name


# (param path, fan_in) of every nn.Linear-like layer of HAN (torch defaults:
# weight and bias ~ U(+-1/sqrt(fan_in))).
_LINEAR = [
    (("audio_proj",), 128),
    (("visual_proj", "frame_proj"), 2048),
    (("visual_proj", "motion_proj"), 512),
    (("visual_proj", "fusion"), 1024),
    (("han_0", "ffn1"), D),
    (("han_0", "ffn2"), D),
    (("mmil", "frame_cls"), D),
    (("mmil", "frame_att"), D),
    (("mmil", "modality_att"), D),
]


def _get(tree, path):
  for k in path:
    tree = tree[k]
  return tree


def test_torch_linear_layers_follow_pytorch_defaults():
  p = _params("torch")
  for path, fan_in in _LINEAR:
    layer = _get(p, path)
    bound = 1.0 / math.sqrt(fan_in)
    _check_uniform(layer["kernel"], bound, path + ("kernel",))
    _check_uniform(layer["bias"], bound, path + ("bias",))


def test_torch_attention_follows_multihead_attention_defaults():
  p = _params("torch")["han_0"]
  # in_proj_weight [3d, d]: xavier_uniform -> bound sqrt(6 / (d + 3d)).
  for k in ("fused_x_kernel", "fused_ctx_kernel"):
    _check_uniform(p[k], math.sqrt(6.0 / (4 * D)), k)
  # out_proj.weight: the Linear default; in_proj_bias, out_proj.bias: 0.
  _check_uniform(p["fused_out_kernel"], 1.0 / math.sqrt(D), "out")
  for k in ("fused_x_bias", "fused_ctx_bias", "fused_out_bias"):
    assert not np.any(np.asarray(p[k])), k
  for n in ("norm1", "norm2"):
    np.testing.assert_array_equal(p[n]["scale"], 1.0)
    np.testing.assert_array_equal(p[n]["bias"], 0.0)


def test_unfused_attention_has_the_same_distributions():
  p = _params("torch", fused_attention=False)["han_0"]
  for branch in ("cross_attn", "self_attn"):
    for proj in ("query", "key", "value"):
      _check_uniform(p[branch][proj]["kernel"], math.sqrt(6.0 / (4 * D)),
                     (branch, proj))
      assert not np.any(np.asarray(p[branch][proj]["bias"]))
    _check_uniform(p[branch]["out"]["kernel"], 1.0 / math.sqrt(D), branch)
    assert not np.any(np.asarray(p[branch]["out"]["bias"]))


def test_flax_scheme_keeps_lecun_normal_and_zero_bias():
  p = _params("flax")
  k = np.asarray(p["audio_proj"]["kernel"], np.float64)
  # LeCun normal (truncated, variance-corrected): variance 1/fan_in, 3x the
  # torch default's 1/(3 fan_in).
  assert abs(k.var() * 128 - 1) < 0.05
  assert not np.any(np.asarray(p["audio_proj"]["bias"]))
  assert abs(np.asarray(p["han_0"]["fused_x_kernel"]).var() * D - 1) < 0.05


def test_cross_modal_modules_follow_the_scheme():
  p = _params("torch", global_context=True, adversarial=True, shared_fc=True)
  _check_uniform(p["shared_fc"]["kernel"], 1 / math.sqrt(D), "shared_fc")
  _check_uniform(p["modality_disc"]["dense_0"]["kernel"], 1 / math.sqrt(D),
                 "disc")
  _check_uniform(p["modality_disc"]["logit"]["bias"], 1 / math.sqrt(10),
                 "disc logit bias")
  _check_uniform(p["han_0"]["self_attn"]["value"]["kernel"],
                 1 / math.sqrt(D), "gcaa value")


def test_unknown_scheme_is_refused():
  with pytest.raises(ValueError, match="valid"):
    inits.linear("xavier", 4)
