"""Parameter initialisers: PyTorch's defaults (the reference code's) or Flax's.

The official AVVP implementations (HAN, MA, cross-modal learning) are PyTorch
code that sets no initialiser, so PyTorch's defaults define the model they
trained:
- `nn.Linear(fan_in, fan_out)`: weight and bias ~ U(-1/sqrt(fan_in),
  +1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5); variance 1/(3 fan_in)).
- `nn.MultiheadAttention(d)`: `in_proj_weight` [3d, d] xavier_uniform, i.e.
  U(+-sqrt(6 / (d + 3d))) for q, k and v alike; `in_proj_bias` and
  `out_proj.bias` zero; `out_proj.weight` the Linear default U(+-1/sqrt(d)).
- `nn.LayerNorm`: weight 1, bias 0 (as Flax).
Flax's defaults (LeCun normal kernels, variance 1/fan_in, and zero biases)
give 3x the weight variance of a Linear; on features at the real releases'
scales (VGGish 0..255) that changed HAN's visual F-scores by about 10 points
(the parity issue), so "torch" is the default of every HAN-family config and
"flax" the named alternative.

Each function returns keyword arguments for `nn.Dense` (or the raw
initialisers), so parameter names and shapes do not depend on the scheme.
"""

import math
from typing import Callable, Dict

import flax.linen as nn
import jax
import jax.numpy as jnp

SCHEMES = ("torch", "flax")
Initializer = Callable[..., jnp.ndarray]


def check(scheme: str) -> str:
  if scheme not in SCHEMES:
    raise ValueError(f"config.model.init_scheme={scheme!r}; valid: "
                     f"{list(SCHEMES)}")
  return scheme


def uniform(bound: float) -> Initializer:
  """U(-bound, +bound) of any shape (the shape does not change the bound)."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def linear(scheme: str, fan_in: int) -> Dict[str, Initializer]:
  """`nn.Dense` kernel_init/bias_init of a Linear layer reading fan_in units."""
  if check(scheme) == "flax":
    return {"kernel_init": nn.initializers.lecun_normal(),
            "bias_init": nn.initializers.zeros}
  bound = 1.0 / math.sqrt(fan_in)
  return {"kernel_init": uniform(bound), "bias_init": uniform(bound)}


def xavier_linear(scheme: str, fan_in: int) -> Dict[str, Initializer]:
  """A Linear the reference re-initialises with `init.xavier_uniform` (AVE's
  att_Net / TBMRF_Net `init_weights`): Glorot-uniform kernel, PyTorch's
  default bias U(+-1/sqrt(fan_in)); flax: its defaults."""
  if check(scheme) == "flax":
    return linear("flax", fan_in)
  return {"kernel_init": nn.initializers.xavier_uniform(),
          "bias_init": uniform(1.0 / math.sqrt(fan_in))}


def lstm_cell(scheme: str, hidden: int) -> Dict[str, Initializer]:
  """`nn.OptimizedLSTMCell` initialisers: torch's `nn.LSTM` draws every
  weight and both biases (b_ih, b_hh) from U(+-1/sqrt(hidden)); the cell's
  one bias is their sum. flax: the cell's defaults (no kwargs)."""
  if check(scheme) == "flax":
    return {}
  bound = 1.0 / math.sqrt(hidden)

  def bias(key, shape, dtype=jnp.float32):
    k1, k2 = jax.random.split(key)
    return uniform(bound)(k1, shape, dtype) + uniform(bound)(k2, shape, dtype)
  return {"kernel_init": uniform(bound), "recurrent_kernel_init":
          uniform(bound), "bias_init": bias}


def attention_in(scheme: str, d_model: int, **flax_kwargs) -> Initializer:
  """Kernel init of the q, k, v input projections of a d-wide attention
  (flax: LeCun normal with `flax_kwargs`, e.g. in_axis/out_axis)."""
  if check(scheme) == "flax":
    return nn.initializers.lecun_normal(**flax_kwargs)
  return uniform(math.sqrt(6.0 / (d_model + 3 * d_model)))


def attention_out(scheme: str, d_model: int, **flax_kwargs) -> Initializer:
  """Kernel init of the output projection of a d-wide attention."""
  if check(scheme) == "flax":
    return nn.initializers.lecun_normal(**flax_kwargs)
  return uniform(1.0 / math.sqrt(d_model))
