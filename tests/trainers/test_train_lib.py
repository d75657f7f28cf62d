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


if __name__ == "__main__":
  absltest.main()
