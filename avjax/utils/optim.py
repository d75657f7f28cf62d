"""Optimizers and schedules from `config.optim`."""

import optax


def make_optimizer(optim_cfg, steps_per_epoch: int):
  """Adam with a staircase decay every `decay_every_epochs` epochs (HAN:
  lr 3e-4, x0.1 every 10 epochs) and optional global-norm clipping."""
  sched = optax.exponential_decay(
      optim_cfg.lr, transition_steps=max(
          1, int(optim_cfg.decay_every_epochs * steps_per_epoch)),
      decay_rate=optim_cfg.decay_factor, staircase=True)
  parts = []
  if optim_cfg.grad_clip:
    parts.append(optax.clip_by_global_norm(optim_cfg.grad_clip))
  parts.append(optax.adam(sched))
  return optax.chain(*parts), sched
