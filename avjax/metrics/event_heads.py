"""Inference and metrics of the event-specific heads (NumPy, on host).

Single label: majority voting over the heads' top-1 labels; when several
labels share the most votes (e.g. 2-2-1 or 1-1-1-1-1) the label of the most
confident head among those voting for them wins (paper Sec. 4.2).
Multi-label: the union of the heads' top-1 labels, compared with the top-K
labels of a model's mean head probabilities (the Top-K baselines).
Accuracies and F1 are in percent. A clip is single-label correct when its
prediction is its `primary` label, or, without primary labels (LLP), one of
its `labels`.

Heads without evidence: the onset layer (Eq. 3) averages over the clip's
audio onsets O and is undefined when O is empty; such a clip's onset head
gives no prediction (`head_valid`): it does not vote, adds nothing to the
union, is never a clip's dominant head and counts as wrong in Table 3
(per-head accuracies `acc_<head>` still score every head's argmax).
"""

from typing import Dict, Optional, Sequence

import numpy as np

TOP_K = (1, 2, 3, 4, 5)


def softmax(logits: np.ndarray) -> np.ndarray:
  z = logits - logits.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


def head_valid(heads: Sequence[str], onset_sel: Optional[np.ndarray],
               num_clips: int) -> np.ndarray:
  """bool [N, H]: heads with evidence (onset: the clip has an onset).

  onset_sel [N, T]: the onset layer's selected segments (None: all valid).
  """
  valid = np.ones((num_clips, len(heads)), bool)
  if onset_sel is not None and "onset" in heads:
    valid[:, list(heads).index("onset")] = np.asarray(onset_sel).sum(-1) > 0
  return valid


def _valid(logits: np.ndarray, valid: Optional[np.ndarray]) -> np.ndarray:
  return (np.ones(logits.shape[:2], bool) if valid is None
          else np.asarray(valid, bool))


def vote(logits: np.ndarray, valid: Optional[np.ndarray] = None
         ) -> np.ndarray:
  """logits [N, H, C] -> voted label [N] (ties: most confident head);
  valid [N, H] optional: only these heads vote (at least one per clip)."""
  valid = _valid(logits, valid)
  p = softmax(logits)
  top = p.argmax(-1)  # [N, H]
  conf = np.where(valid, p.max(-1), -1.0)
  n, _, c = p.shape
  votes = np.zeros((n, c), np.int64)
  np.add.at(votes, (np.arange(n)[:, None], top), valid.astype(np.int64))
  best = votes.max(-1, keepdims=True)
  tied_head = (votes[np.arange(n)[:, None], top] == best) & valid  # [N, H]
  return top[np.arange(n), np.where(tied_head, conf, -2.0).argmax(-1)]


def union(logits: np.ndarray, valid: Optional[np.ndarray] = None
          ) -> np.ndarray:
  """bool [N, C]: the set of the (valid) heads' top-1 labels."""
  valid = _valid(logits, valid)
  top = logits.argmax(-1)
  out = np.zeros((logits.shape[0], logits.shape[-1]), bool)
  n_idx, h_idx = np.nonzero(valid)
  out[n_idx, top[n_idx, h_idx]] = True
  return out


def top_k(probs: np.ndarray, k: int) -> np.ndarray:
  """bool [N, C]: the k highest-probability labels of probs [N, C]."""
  idx = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
  out = np.zeros(probs.shape, bool)
  out[np.arange(len(idx))[:, None], idx] = True
  return out


def f1_scores(pred: np.ndarray, truth: np.ndarray) -> Dict[str, float]:
  """Micro F1 over all (clip, label) pairs and the mean per-clip F1."""
  pred, truth = pred.astype(bool), truth.astype(bool)
  tp = (pred & truth).sum(-1)
  npred, ntrue = pred.sum(-1), truth.sum(-1)
  micro = 2 * tp.sum() / max(npred.sum() + ntrue.sum(), 1)
  per = np.where(npred + ntrue > 0, 2 * tp / np.maximum(npred + ntrue, 1),
                 1.0)
  return {"micro": 100.0 * float(micro), "sample": 100.0 * float(per.mean())}


def paired_bootstrap_f1(pred_a: np.ndarray, pred_b: np.ndarray,
                        truth: np.ndarray, num_samples: int = 2000,
                        seed: int = 0) -> Dict[str, float]:
  """Micro F1 of label sets pred_a minus pred_b (bool [N, C] each, the same
  N clips as truth [N, C]), with a paired bootstrap over clips: each
  resample draws N clips with replacement and scores both on them.

  Returns diff (on all clips), lo/hi (the 2.5 / 97.5 percentiles of the
  resampled differences), p_a_wins (fraction of resamples with a > b) and
  num_samples.
  """
  if not pred_a.shape == pred_b.shape == truth.shape:
    raise ValueError(f"shapes differ: {pred_a.shape} {pred_b.shape} "
                     f"{truth.shape}")
  truth = truth.astype(bool)
  parts = []
  for pred in (pred_a.astype(bool), pred_b.astype(bool)):
    parts.append(((pred & truth).sum(-1), pred.sum(-1) + truth.sum(-1)))
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, len(truth), size=(num_samples, len(truth)))

  def micro(tp, denom, sel=None):
    if sel is not None:
      tp, denom = tp[sel].sum(-1), denom[sel].sum(-1)
    else:
      tp, denom = tp.sum(), denom.sum()
    return 200.0 * tp / np.maximum(denom, 1)

  diff = micro(*parts[0]) - micro(*parts[1])
  boot = micro(*parts[0], idx) - micro(*parts[1], idx)
  lo, hi = np.percentile(boot, [2.5, 97.5])
  return {"diff": float(diff), "lo": float(lo), "hi": float(hi),
          "p_a_wins": float((boot > 0).mean()),
          "num_samples": float(num_samples)}


def drop_background(labels: np.ndarray) -> np.ndarray:
  """[N, C] labels whose last class is AVE's background -> the event class
  only; background-only clips keep the background (as
  `losses.event_heads.drop_background`)."""
  labels = (np.asarray(labels) > 0).astype(np.float32)
  out = labels.copy()
  out[labels[:, :-1].sum(-1) > 0, -1] = 0.0
  return out


def correct(pred: np.ndarray, labels: np.ndarray,
            primary: Optional[np.ndarray] = None) -> np.ndarray:
  """bool [N] or [N, H]: whether labels pred [N] or [N, H] are right."""
  ref = (primary if primary is not None else labels) > 0
  if pred.ndim == 1:
    return np.take_along_axis(ref, pred[:, None], axis=1)[:, 0]
  return np.take_along_axis(ref, pred, axis=1)


def score(logits: np.ndarray, labels: np.ndarray,
          primary: Optional[np.ndarray], heads: Sequence[str],
          valid: Optional[np.ndarray] = None) -> Dict[str, float]:
  """The flat metric dict of one split (see `avjax.trainers.event_heads`);
  valid [N, H]: `head_valid` (None: every head has evidence)."""
  res = {"num_clips": float(len(logits)),
         "acc": 100.0 * float(correct(vote(logits, valid), labels,
                                      primary).mean())}
  per_head = correct(logits.argmax(-1), labels, primary)  # [N, H]
  for i, h in enumerate(heads):
    res[f"acc_{h}"] = 100.0 * float(per_head[:, i].mean())
  u = union(logits, valid)
  f = f1_scores(u, labels)
  res.update(f1_union=f["micro"], f1s_union=f["sample"],
             card_union=float(u.sum(-1).mean()),
             card_labels=float((labels > 0).sum(-1).mean()))
  mean_p = softmax(logits).mean(1)
  for k in TOP_K:
    if k <= logits.shape[-1]:
      f = f1_scores(top_k(mean_p, k), labels)
      res[f"f1_top{k}"], res[f"f1s_top{k}"] = f["micro"], f["sample"]
  return res


def complementarity(logits: np.ndarray, labels: np.ndarray,
                    primary: Optional[np.ndarray], heads: Sequence[str],
                    valid: Optional[np.ndarray] = None) -> Dict[str, int]:
  """Paper Table 3: clips only one of continuous/instant/onset gets right,
  and clips instant or onset gets right but continuous does not."""
  ok = correct(logits.argmax(-1), labels, primary) & _valid(logits, valid)
  i = {h: heads.index(h) for h in ("continuous", "instant", "onset")}
  trio = ok[:, [i["continuous"], i["instant"], i["onset"]]]
  only = trio & (trio.sum(1, keepdims=True) == 1)
  return {"continuous": int(only[:, 0].sum()),
          "instant": int(only[:, 1].sum()), "onset": int(only[:, 2].sum()),
          "(ins|ons)&~cont": int(((trio[:, 1] | trio[:, 2]) &
                                  ~trio[:, 0]).sum()),
          "num_clips": int(len(ok))}


DOMINANT_SCORES = ("logit", "logprob", "relative")


def dominant_types(logits: np.ndarray, labels: np.ndarray,
                   primary: Optional[np.ndarray], heads: Sequence[str],
                   score: str = "logprob",
                   valid: Optional[np.ndarray] = None):
  """Paper Table 4: per clip, the head with the highest score on the
  ground-truth class (each label of the clip without primary labels); per
  class, the majority head over its clips (ties: the first head); heads
  without evidence (valid [N, H] False) are skipped.

  score: "logprob" (default) compares the heads' log-softmax log p_i(y);
  "logit" their raw outputs O_{i,y} = FC_i(z_i)_y, the paper's literal rule;
  "relative" log p_i(y) minus head i's mean log p_i(y') on the true labels
  y' of all clips given (with evidence): a head wins a clip where it is more
  confident than it usually is, so a unimodal head that is right on its own
  events and lost elsewhere is not outscored by the joint heads merely for
  seeing more (see below). Not the paper's rule; reported beside it.
  Softmax CE leaves a per-clip shift of a head's logits undetermined, so the
  raw rule depends on where training drifted that shift (on the synthetic
  default it recovered 8/15 to 14/15 classes across training runs of the
  same data); log-softmax removes the shift.

  What the rule can find: for heads that are calibrated posteriors, the head
  that sees both streams is, in expectation, at least as confident on the
  true class as a unimodal head, on the clips of EVERY class y:
  E[log p(y|a,v) - log p(y|v) | y] = E_v KL(p(a|v,y) || p(a|v)) >= 0 (and
  the same with a and v swapped), since p(y|a,v) / p(y|v) = p(a|v,y) /
  p(a|v). So a unimodal head can hold a class's majority only through a skew
  of the per-clip comparison or through miscalibration; `head_profile`
  reports the heads' accuracies and mean log p(y) per true type beside it.

  Returns:
    (assigned [C] head index, -1 for classes without clips;
     votes [C, H] clip counts).
  """
  ref = (primary if primary is not None else labels) > 0
  ok = _valid(logits, valid)
  if score == "logit":
    s = np.asarray(logits, np.float64)
  elif score in ("logprob", "relative"):
    s = log_softmax(logits)  # exact near p = 1
    if score == "relative":
      n_idx, c_idx = np.nonzero(ref)
      true_lp = s[n_idx, :, c_idx]  # [M, H]
      w = ok[n_idx]
      mean = (np.where(w, true_lp, 0).sum(0) /
              np.maximum(w.sum(0), 1))  # [H]
      s = s - mean[None, :, None]
  else:
    raise ValueError(f"score={score!r}; valid: {DOMINANT_SCORES}")
  s = np.where(ok[..., None], s, -np.inf)
  best = s.argmax(1)  # [N, C] best head per class
  c, h = ref.shape[1], len(heads)
  votes = np.zeros((c, h), np.int64)
  n_idx, c_idx = np.nonzero(ref)
  np.add.at(votes, (c_idx, best[n_idx, c_idx]), 1)
  assigned = np.where(votes.sum(1) > 0, votes.argmax(1), -1)
  return assigned, votes


def log_softmax(logits: np.ndarray) -> np.ndarray:
  z = np.asarray(logits, np.float64)
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def head_profile(logits: np.ndarray, labels: np.ndarray,
                 primary: Optional[np.ndarray], groups: Sequence[int],
                 num_groups: int, valid: Optional[np.ndarray] = None
                 ) -> Dict[str, np.ndarray]:
  """Each head on the clips of each group of classes (e.g. the true event
  type of the clip's class): what Table 4's rule compares, and whether the
  head is right.

  The clips of group g are those whose reference class (primary label, else
  each label) is in g; an abstaining head (valid False) counts as wrong and
  is left out of its mean log p.

  Returns {"clips" [G], "acc" [G, H] % top-1 = y, "logp" [G, H] mean
  log p_i(y), "specialist" [G] head with the highest acc (-1: no clips)}.
  """
  ref = (primary if primary is not None else labels) > 0
  n_idx, c_idx = np.nonzero(ref)
  g_idx = np.asarray(groups)[c_idx]
  ok = _valid(logits, valid)[n_idx]  # [M, H]
  right = (np.asarray(logits).argmax(-1)[n_idx] == c_idx[:, None]) & ok
  logp = log_softmax(logits)[n_idx, :, c_idx]  # [M, H]
  h = logits.shape[1]
  clips = np.bincount(g_idx, minlength=num_groups)
  acc, mean_logp = np.zeros((num_groups, h)), np.full((num_groups, h), np.nan)
  for g in range(num_groups):
    m = g_idx == g
    if m.any():
      acc[g] = 100 * right[m].mean(0)
      for j in range(h):
        if ok[m, j].any():
          mean_logp[g, j] = logp[m, j][ok[m, j]].mean()
  specialist = np.where(clips > 0, acc.argmax(1), -1)
  return {"clips": clips, "acc": acc, "logp": mean_logp,
          "specialist": specialist}
