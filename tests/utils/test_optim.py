"""The learning-rate schedules against PyTorch's StepLR, stepped the way
each reference code steps it, through optax's update count."""

from absl.testing import absltest
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from avjax.utils import optim


def applied_rates(optim_cfg, steps_per_epoch, num_updates):
  """The step size of each Adam update on a constant gradient (Adam's
  bias-corrected update is then lr * 1 / (1 + eps))."""
  tx, _ = optim.make_optimizer(optim_cfg, steps_per_epoch)
  params = jnp.zeros(())
  state = tx.init(params)
  rates = []
  for _ in range(num_updates):
    upd, state = tx.update(jnp.ones(()), state, params)
    params = optax.apply_updates(params, upd)
    rates.append(-float(upd))
  return np.array(rates)


def step_lr(lr, step_size, gamma, num_updates, before_update):
  """PyTorch's StepLR: lr * gamma ** (last_epoch // step_size), last_epoch
  0 after construction and +1 per scheduler.step(); stepped before each
  optimizer.step() (AVE's supervised_main.py) or after each epoch (HAN)."""
  last_epoch, rates = 0, []
  for _ in range(num_updates):
    if before_update:
      last_epoch += 1
    rates.append(lr * gamma ** (last_epoch // step_size))
  return np.array(rates)


class ScheduleTest(absltest.TestCase):

  def test_decay_every_steps_is_steplr_stepped_before_each_update(self):
    c = ml_collections.ConfigDict({"lr": 1e-3, "decay_every_steps": 4,
                                   "decay_every_epochs": 100,
                                   "decay_factor": 0.1, "grad_clip": 0.0})
    got = applied_rates(c, 5, 13)
    want = step_lr(1e-3, 4, 0.1, 13, before_update=True)
    np.testing.assert_allclose(got, want, rtol=1e-4)
    self.assertAlmostEqual(got[2], 1e-3, places=7)  # updates 1-3: lr
    self.assertAlmostEqual(got[3], 1e-4, places=7)  # the 4th: decayed

  def test_decay_every_epochs_is_steplr_stepped_after_each_epoch(self):
    c = ml_collections.ConfigDict({"lr": 3e-4, "decay_every_epochs": 2,
                                   "decay_factor": 0.1, "grad_clip": 0.0})
    got = applied_rates(c, 3, 13)
    spe, rates = 3, []
    for epoch in range(5):  # scheduler.step() at each epoch end
      rates += [3e-4 * 0.1 ** (epoch // 2)] * spe
    np.testing.assert_allclose(got, rates[:13], rtol=1e-4)

  def test_keras_adam_is_keras_update_rule(self):
    """optim.adam_form=keras against Keras's Adam as written in keras.
    optimizers.Adam (lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); p -= lr_t m /
    (sqrt(v) + 1e-7)), on gradients small enough that eps matters; the
    optax form differs there."""
    c = ml_collections.ConfigDict({"lr": 1e-3, "decay_every_epochs": 100,
                                   "decay_factor": 0.1, "grad_clip": 0.0,
                                   "adam_form": "keras"})
    tx, _ = optim.make_optimizer(c, 10)
    opt = optax.adam(1e-3)
    grads = np.random.default_rng(0).normal(size=(12, 3)) * 1e-7
    p = k_p = o_p = np.zeros(3)
    m = v = np.zeros(3)
    state, o_state = tx.init(jnp.zeros(3)), opt.init(jnp.zeros(3))
    for t, g in enumerate(grads, 1):
      m = 0.9 * m + 0.1 * g
      v = 0.999 * v + 0.001 * g * g
      lr_t = 1e-3 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
      p = p - lr_t * m / (np.sqrt(v) + 1e-7)
      upd, state = tx.update(jnp.asarray(g, jnp.float32), state)
      k_p = k_p + np.asarray(upd)
      upd, o_state = opt.update(jnp.asarray(g, jnp.float32), o_state)
      o_p = o_p + np.asarray(upd)
    np.testing.assert_allclose(k_p, p, rtol=1e-4)
    self.assertGreater(np.abs(o_p - p).max(), 0.1 * np.abs(p).max())
    c.adam_form = "adamw"
    with self.assertRaisesRegex(ValueError, "adam_form='adamw'"):
      optim.make_optimizer(c, 10)


if __name__ == "__main__":
  absltest.main()
