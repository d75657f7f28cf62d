"""The pure train step and train-state construction of the loop.

(The predict step is the evaluators', `avjax.evaluators.common`.)
"""

import functools
from typing import Any, Callable, Dict

import flax
from flax.training import train_state
import jax
import jax.numpy as jnp
import numpy as np
import optax

from avjax.data import schema
from avjax.utils import sharding


class TrainState(train_state.TrainState):
  """Flax TrainState plus one replicated PRNG key (folded with the step)."""
  rng: jax.Array

  @property
  def model_state(self) -> Dict[str, Any]:
    return {}

  def variables(self, params: Any = None) -> Dict[str, Any]:
    """The `apply` variables: params (default the state's) + model state."""
    return {"params": self.params if params is None else params,
            **self.model_state}


class StatefulTrainState(TrainState):
  """A TrainState that also carries the model's non-parameter collections
  (`model_state`, e.g. the `batch_stats` of the reference's BatchNorm
  discriminator), updated by every train step. Only models that have such
  collections get it, so the checkpoints of the others keep their layout."""
  model_state: Any = None


def create_train_state(model, tx: optax.GradientTransformation,
                       batch_shapes: Dict[str, jax.ShapeDtypeStruct],
                       rng: jax.Array, mesh) -> TrainState:
  """Initialises the state directly with replicated sharding (no host copy)."""
  def init(rng):
    p_rng, d_rng, s_rng = jax.random.split(rng, 3)
    dummy = {k: jnp.zeros(v.shape, v.dtype) for k, v in batch_shapes.items()}
    variables = dict(model.init({"params": p_rng, "dropout": d_rng}, dummy,
                                train=False))
    params = variables.pop("params")
    if variables:
      return StatefulTrainState.create(apply_fn=model.apply, params=params,
                                       tx=tx, rng=s_rng,
                                       model_state=variables)
    return TrainState.create(apply_fn=model.apply, params=params, tx=tx,
                             rng=s_rng)
  abstract = jax.eval_shape(init, rng)
  shardings = jax.tree.map(lambda _: sharding.replicated(mesh), abstract)
  return jax.jit(init, out_shardings=shardings)(rng)


def train_step(state: TrainState, batch: Dict[str, jax.Array], *,
               loss_fn: Callable[..., Dict[str, jax.Array]]
               ) -> tuple[TrainState, Dict[str, jax.Array]]:
  """One optimisation step; a non-finite loss leaves the state unchanged.

  loss_fn(model_outputs, batch, step=state.step) returns a dict with a scalar
  "loss" and any other scalar terms to log (`step` drives schedules inside a
  loss, e.g. the gradient-reversal scale of cross-modal learning).
  """
  rng = jax.random.fold_in(state.rng, state.step)

  def objective(params):
    kw = dict(train=True, rngs={"dropout": rng})
    if state.model_state:  # e.g. BatchNorm's running statistics
      out, model_state = state.apply_fn(
          state.variables(params), schema.model_inputs(batch),
          mutable=list(state.model_state), **kw)
    else:
      out = state.apply_fn({"params": params}, schema.model_inputs(batch),
                           **kw)
      model_state = state.model_state
    terms = loss_fn(out, batch, step=state.step)
    return terms["loss"], (terms, model_state)

  grads, (terms, model_state) = jax.grad(objective, has_aux=True)(
      state.params)
  gnorm = optax.tree.norm(grads)
  finite = jnp.isfinite(terms["loss"]) & jnp.isfinite(gnorm)
  # The update runs inside the taken branch: a select between the updated
  # and the old state (jnp.where over the tree) is an extra pass over params
  # and both Adam moments, ~1/4 of HAN's step time at batch 16 on CPU.
  def update(st, g):
    st = st.apply_gradients(grads=g)
    return st.replace(model_state=model_state) if model_state else st

  new = jax.lax.cond(finite, update, lambda st, g: st, state, grads)
  new = new.replace(step=state.step + 1)
  metrics = dict(terms, grad_norm=gnorm, nonfinite=1.0 - finite)
  return new, metrics


def jit_train_step(loss_fn, mesh, state_sharding):
  return jax.jit(functools.partial(train_step, loss_fn=loss_fn),
                 donate_argnums=(0,),
                 out_shardings=(state_sharding, sharding.replicated(mesh)))


def param_count(params: Any) -> int:
  return sum(x.size for x in jax.tree.leaves(params))


def param_shapes(params: Any) -> Dict[str, list]:
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params), sep="/")
  return {k: list(v.shape) for k, v in flat.items()}


def params_digest(params: Any) -> str:
  """SHA-256 of all parameter bytes (bit-exact reproducibility checks)."""
  import hashlib  # pylint: disable=g-import-not-at-top
  h = hashlib.sha256()
  flat = flax.traverse_util.flatten_dict(
      flax.core.unfreeze(jax.device_get(params)), sep="/")
  for k in sorted(flat):
    h.update(k.encode())
    h.update(np.ascontiguousarray(flat[k]).tobytes())
  return h.hexdigest()
