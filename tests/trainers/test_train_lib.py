"""train_lib.train_step: a non-finite step leaves params and optimizer alone."""

import functools

from absl.testing import absltest
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from avjax.trainers import train_lib


class _Linear(nn.Module):

  @nn.compact
  def __call__(self, inputs, train):
    del train
    return {"y": nn.Dense(3)(inputs["x"])}


def _loss(out, batch, step):
  del step
  err = out["y"] - batch["target"]
  return {"loss": jnp.mean(err ** 2) * batch["scale"]}


class TrainStepTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    model = _Linear()
    x = jnp.ones((4, 5))
    params = model.init(jax.random.key(0), {"x": x}, train=False)["params"]
    self.state = train_lib.TrainState.create(
        apply_fn=model.apply, params=params, tx=optax.adam(0.1),
        rng=jax.random.key(1))
    self.step = jax.jit(functools.partial(train_lib.train_step,
                                          loss_fn=_loss))
    self.batch = {"x": x, "target": jnp.zeros((4, 3)),
                  "scale": jnp.float32(1.0)}

  def test_finite_step_updates_params_and_moments(self):
    new, metrics = self.step(self.state, self.batch)
    self.assertEqual(float(metrics["nonfinite"]), 0.0)
    self.assertEqual(int(new.step), 1)
    diff = jax.tree.map(lambda a, b: np.abs(np.asarray(a - b)).max(),
                        new.params, self.state.params)
    self.assertGreater(max(jax.tree.leaves(diff)), 0.0)

  def test_non_finite_step_keeps_params_and_moments(self):
    for bad in (np.nan, np.inf):
      new, metrics = self.step(self.state, dict(self.batch,
                                                scale=jnp.float32(bad)))
      self.assertEqual(float(metrics["nonfinite"]), 1.0)
      self.assertEqual(int(new.step), 1)  # the step (data position) advances
      for a, b in zip(jax.tree.leaves((new.params, new.opt_state)),
                      jax.tree.leaves((self.state.params,
                                       self.state.opt_state))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


class _BatchNormed(nn.Module):
  """A model with running statistics (collection `batch_stats`)."""

  @nn.compact
  def __call__(self, inputs, train):
    y = nn.Dense(3)(inputs["x"])
    return {"y": nn.BatchNorm(use_running_average=not train)(y)}


class StatefulTrainStepTest(absltest.TestCase):
  """Models with non-parameter collections carry them in the train state."""

  def setUp(self):
    super().setUp()
    self.model = _BatchNormed()
    self.x = jax.random.normal(jax.random.key(2), (4, 5))
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    self.state = train_lib.create_train_state(
        self.model, optax.adam(0.1),
        {"x": jax.ShapeDtypeStruct((4, 5), jnp.float32)}, jax.random.key(1),
        mesh)
    self.step = jax.jit(functools.partial(train_lib.train_step,
                                          loss_fn=_loss))
    self.batch = {"x": self.x, "target": jnp.zeros((4, 3)),
                  "scale": jnp.float32(1.0)}

  def test_state_kind(self):
    self.assertIsInstance(self.state, train_lib.StatefulTrainState)
    self.assertEqual(list(self.state.model_state), ["batch_stats"])
    plain = train_lib.create_train_state(
        _Linear(), optax.adam(0.1),
        {"x": jax.ShapeDtypeStruct((4, 5), jnp.float32)}, jax.random.key(1),
        jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",)))
    self.assertNotIsInstance(plain, train_lib.StatefulTrainState)
    self.assertEqual(plain.model_state, {})

  def test_step_updates_running_stats_as_flax(self):
    new, _ = self.step(self.state, self.batch)
    _, want = self.model.apply(self.state.variables(), {"x": self.x},
                               train=True, mutable=["batch_stats"])
    jax.tree.map(np.testing.assert_allclose, new.model_state, want)
    stats = new.model_state["batch_stats"]["BatchNorm_0"]
    self.assertGreater(float(jnp.abs(stats["mean"]).max()), 0.0)

  def test_non_finite_step_keeps_running_stats(self):
    new, _ = self.step(self.state, dict(self.batch, scale=jnp.float32(np.nan)))
    jax.tree.map(np.testing.assert_array_equal, new.model_state,
                 self.state.model_state)


if __name__ == "__main__":
  absltest.main()
