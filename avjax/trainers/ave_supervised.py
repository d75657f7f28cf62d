"""AVE event localization: supervised and weakly-supervised (MIL) training.

  python -m avjax.main --config=configs/ave.py --workdir=DIR

The loop (`trainers.loop`) runs it; the config names the components:
`model.name` (`ave_net`: every fusion and stage), `loss.type`
(`losses.ave`: "segment", per-segment softmax CE against the dense labels,
paper Sec. 4.1; "mil", the segment scores pooled over time by
`loss.pooling`, softmax CE against the video labels, Sec. 4.4; weak runs
also read `data.extra_train_splits`, e.g. AVE's background-only
`train_noisy`) and `eval.evaluator` (`ave_acc`: per-segment accuracy, and
on the synthetic dataset the attention mass on the sounding object).
"""

from avjax.trainers import loop

TRAINER = loop.Trainer("ave_supervised")
train_and_evaluate = TRAINER.train_and_evaluate
evaluate_checkpoint = TRAINER.evaluate_checkpoint
