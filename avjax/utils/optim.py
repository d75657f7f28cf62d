"""Optimizers and schedules from `config.optim`."""

import jax
import jax.numpy as jnp
import optax

# `optim.adam_form`: "optax" (PyTorch's Adam: eps 1e-8 added to the bias-
# corrected sqrt(v_hat)) or "keras" (Keras's Adam, the AVE cross-modality
# reference's optimizer: eps 1e-7 added to sqrt(v) before the bias
# correction, i.e. eps / sqrt(1 - b2^t) on sqrt(v_hat)).
ADAM_FORMS = ("optax", "keras")


def scale_by_keras_adam(b1: float = 0.9, b2: float = 0.999,
                        eps: float = 1e-7) -> optax.GradientTransformation:
  """Keras's Adam direction: sqrt(1 - b2^t) / (1 - b1^t) * m_t /
  (sqrt(v_t) + eps), t the 1-based update count (keras.optimizers.Adam;
  multiply by -lr for the update)."""

  def init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros,
                                  nu=zeros)

  def update(updates, state, params=None):
    del params
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu,
                      updates)
    count = state.count + 1
    t = count.astype(jnp.float32)
    scale = jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    out = jax.tree.map(lambda m, v: scale * m / (jnp.sqrt(v) + eps), mu, nu)
    return out, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

  return optax.GradientTransformation(init, update)


def make_schedule(optim_cfg, steps_per_epoch: int):
  """The learning rate of update u (0-based): a staircase decay by
  `decay_factor` every `decay_every_epochs` epochs (HAN: lr 3e-4, x0.1
  every 10 epochs; PyTorch's StepLR stepped after each epoch: updates
  0 .. N*spe-1 use lr), or, with `decay_every_steps=N` > 0, PyTorch's
  StepLR(step_size=N) stepped BEFORE each update, as AVE's
  supervised_main.py (`scheduler.step(); optimizer.step()`): update u uses
  lr * factor ** ((u + 1) // N), so the N-th update is the first at the
  decayed rate."""
  every_steps = int(optim_cfg.get("decay_every_steps", 0))
  if every_steps:
    base = optax.exponential_decay(
        optim_cfg.lr, transition_steps=every_steps,
        decay_rate=optim_cfg.decay_factor, staircase=True)
    return lambda count: base(count + 1)
  return optax.exponential_decay(
      optim_cfg.lr, transition_steps=max(
          1, int(optim_cfg.decay_every_epochs * steps_per_epoch)),
      decay_rate=optim_cfg.decay_factor, staircase=True)


def make_optimizer(optim_cfg, steps_per_epoch: int):
  """Adam (`optim.adam_form`, `ADAM_FORMS`) on `make_schedule`'s learning
  rate and optional global-norm clipping."""
  sched = make_schedule(optim_cfg, steps_per_epoch)
  parts = []
  if optim_cfg.grad_clip:
    parts.append(optax.clip_by_global_norm(optim_cfg.grad_clip))
  form = optim_cfg.get("adam_form", "optax")
  if form not in ADAM_FORMS:
    raise ValueError(f"config.optim.adam_form={form!r}; valid: {ADAM_FORMS}")
  if form == "keras":
    parts += [scale_by_keras_adam(), optax.scale_by_learning_rate(sched)]
  else:
    parts.append(optax.adam(sched))
  return optax.chain(*parts), sched
