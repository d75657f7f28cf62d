"""Event-specific fusion layers (Senocak et al. 2023): joint multi-task
training of the heads in `config.model.heads` with one label per clip.

  python -m avjax.main --config=configs/event_heads.py --workdir=DIR

The loop (`trainers.loop`) runs it; the config names the components:
`model.name` (`event_heads`), `loss.type` (`losses.event_heads`: softmax CE
per head, equal weights; multi-hot training labels reduced to one label per
clip by `loss.single_label`) and `eval.evaluator` (`event_heads`: voting,
union and Top-K metrics; `pred_<split>.npz` keeps every head's logits for
`python -m avjax.projects.event_heads.analyze`).
"""

from avjax.trainers import loop

TRAINER = loop.Trainer("event_heads")
train_and_evaluate = TRAINER.train_and_evaluate
evaluate_checkpoint = TRAINER.evaluate_checkpoint
