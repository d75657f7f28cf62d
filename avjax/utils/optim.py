"""Optimizers and schedules from `config.optim`."""

import optax


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
  """Adam on `make_schedule`'s learning rate and optional global-norm
  clipping."""
  sched = make_schedule(optim_cfg, steps_per_epoch)
  parts = []
  if optim_cfg.grad_clip:
    parts.append(optax.clip_by_global_norm(optim_cfg.grad_clip))
  parts.append(optax.adam(sched))
  return optax.chain(*parts), sched
