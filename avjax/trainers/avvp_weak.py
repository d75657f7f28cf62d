"""Weakly-supervised AVVP: HAN and its family (MA, cross-modal learning,
VEBA), trained on video-level labels and scored per segment.

  python -m avjax.main --config=configs/avvp_han.py --workdir=DIR

The loop (`trainers.loop`) runs it; the config names the components:
`model.name` (`avvp_net`), `loss.type` (`losses.avvp`: han, han_nce,
crossmodal; `losses.veba`: veba, veba_shared) and `eval.evaluator`
(`avvp`: segment/event F1 and tagging mAP; `veba`).
"""

from avjax.trainers import loop


def validate(config) -> list:
  """AVVPNet's discriminator needs the loss that trains it."""
  return [(config.model.name != "avvp_net" or not config.model.adversarial
           or config.loss.type == "crossmodal", "loss.type",
           "'crossmodal' when model.adversarial=True (else the "
           "discriminator is never trained)")]


TRAINER = loop.Trainer("avvp_weak", validate=validate)
train_and_evaluate = TRAINER.train_and_evaluate
evaluate_checkpoint = TRAINER.evaluate_checkpoint
