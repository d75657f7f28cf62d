"""AVE cross-modality localization: AVDLN (contrastive) and DCCA training.

  python -m avjax.main --config=configs/ave_cml.py --workdir=DIR

The loop (`trainers.loop`) runs it; the config names the components:
`model.name` (`avdln`, `model.kind` avdln or dcca), `loss.type`
(`losses.cml`: contrastive with margin, or dcca) and `eval.evaluator`
(`ave_cml`: A2V/V2A exact-match accuracy, paper Table 3; for
`model.kind="dcca"` in a linear CCA space fitted on the training pairs).
"""

from avjax.trainers import loop

TRAINER = loop.Trainer("avdln")
train_and_evaluate = TRAINER.train_and_evaluate
evaluate_checkpoint = TRAINER.evaluate_checkpoint
