"""Tests for avjax.metrics.avvp against hand-worked cases and a slow reference.

A note on "matching is not one-to-one": between the maximal runs of two binary
sequences, IoU >= 0.5 can pair a predicted event with at most one ground-truth
event and vice versa (two disjoint runs cannot each cover half of a third run
plus the gap between them). The cases below therefore check that an extra
overlapping event counts as an FP/FN, as in the HAN reference code.
"""

import time

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from avjax.metrics import avvp

T, C = 10, 3


def _seq(*intervals, length=T):
  x = np.zeros(length, bool)
  for start, end in intervals:
    x[start:end] = True
  return x


def _clip(audio=None, visual=None, length=T, classes=C):
  """Bool [1, length, classes] from {class: [(start, end), ...]}."""
  out = []
  for spec in (audio or {}, visual or {}):
    x = np.zeros((1, length, classes), bool)
    for c, intervals in spec.items():
      x[0, :, c] = _seq(*intervals, length=length)
    out.append(x)
  return out


def _scores(pred, gt):
  return avvp.avvp_scores(pred[0], pred[1], gt[0], gt[1])


# ---- Slow reference: a direct port of the HAN eval_metrics.py loops. ----


def _ref_events(seq):
  events, t = [], 0
  while t < len(seq):
    if seq[t]:
      start = t
      while t < len(seq) and seq[t]:
        t += 1
      events.append(_seq((start, t), length=len(seq)).astype(float))
    else:
      t += 1
  return events


def _ref_event_counts(pred, gt):
  ev_p, ev_g = _ref_events(pred), _ref_events(gt)
  match = lambda x, y: np.sum(x * y) >= 0.5 * np.sum(x + y - x * y)
  tp = sum(any(match(x, y) for y in ev_g) for x in ev_p)
  fn = sum(not any(match(y, x) for x in ev_p) for y in ev_g)
  return tp, len(ev_p) - tp, fn


def _ref_seg_counts(pred, gt):
  return (np.sum(pred & gt), np.sum(pred & ~gt), np.sum(~pred & gt))


def _ref_f1(counts):
  f = [2 * tp / (2 * tp + fp + fn) for tp, fp, fn in counts if tp + fp + fn]
  return sum(f) / len(f) if f else 1.0


def reference_scores(pa, pv, ga, gv):
  per = {k: [] for k in avvp.SCORE_KEYS}
  for n in range(pa.shape[0]):
    mods = {"a": (pa[n], ga[n]), "v": (pv[n], gv[n]),
            "av": (pa[n] & pv[n], ga[n] & gv[n])}
    for level, fn in (("seg", _ref_seg_counts), ("ev", _ref_event_counts)):
      counts = {m: [fn(p[:, c], g[:, c]) for c in range(p.shape[1])]
                for m, (p, g) in mods.items()}
      for m in mods:
        per[f"{level}_{m}"].append(_ref_f1(counts[m]))
      per[f"{level}_event"].append(_ref_f1(
          [np.add(a, v) for a, v in zip(counts["a"], counts["v"])]))
      per[f"{level}_type"].append(
          np.mean([per[f"{level}_{m}"][-1] for m in mods]))
  return {k: 100.0 * np.mean(v) for k, v in per.items()}


class HandWorkedTest(parameterized.TestCase):

  def assertScores(self, got, **expected):
    for key, value in expected.items():
      self.assertAlmostEqual(got[key], value, places=9, msg=key)

  def test_empty_clip_scores_one_everywhere(self):
    empty = _clip()
    got = _scores(empty, empty)
    self.assertScores(got, **{k: 100.0 for k in avvp.SCORE_KEYS})
    self.assertEqual(got["num_clips"], 1)

  def test_class_only_in_prediction(self):
    pred, gt = _clip(audio={0: [(0, 3)]}), _clip()
    self.assertScores(_scores(pred, gt), seg_a=0.0, seg_v=100.0,
                      seg_av=100.0, seg_type=200.0 / 3, seg_event=0.0,
                      ev_a=0.0, ev_v=100.0, ev_av=100.0, ev_type=200.0 / 3,
                      ev_event=0.0)

  def test_extra_class_halves_the_clip_score(self):
    pred = _clip(audio={0: [(0, 10)], 1: [(0, 2)]})
    gt = _clip(audio={0: [(0, 10)]})
    self.assertScores(_scores(pred, gt), seg_a=50.0, ev_a=50.0, seg_v=100.0)

  def test_long_prediction_over_two_gt_events(self):
    # IoU with [0,4) = 4/6 -> TP; gt [5,6) has IoU 1/6 -> FN.
    pred, gt = _clip(audio={0: [(0, 6)]}), _clip(audio={0: [(0, 4), (5, 6)]})
    self.assertScores(_scores(pred, gt), ev_a=100.0 * 2 / 3,
                      seg_a=100.0 * 10 / 11)

  def test_long_prediction_matching_neither_gt_event(self):
    pred, gt = _clip(audio={0: [(0, 5)]}), _clip(audio={0: [(0, 2), (3, 5)]})
    self.assertScores(_scores(pred, gt), ev_a=0.0)  # TP 0, FP 1, FN 2

  def test_two_predictions_over_one_gt_event(self):
    # [0,4) has IoU 4/6 -> TP; [5,6) has IoU 1/6 -> FP; the gt is matched.
    pred, gt = _clip(audio={0: [(0, 4), (5, 6)]}), _clip(audio={0: [(0, 6)]})
    self.assertScores(_scores(pred, gt), ev_a=100.0 * 2 / 3)

  @parameterized.named_parameters(
      ("half_inside", [(0, 2)], [(0, 4)], 100.0),
      ("double_length", [(0, 6)], [(0, 3)], 100.0),
      ("shifted", [(1, 4)], [(2, 5)], 100.0),  # inter 2, union 4
      ("just_below", [(0, 2)], [(0, 5)], 0.0),  # 2/5
  )
  def test_iou_exactly_half_counts(self, pred_iv, gt_iv, expected):
    pred, gt = _clip(audio={0: pred_iv}), _clip(audio={0: gt_iv})
    self.assertScores(_scores(pred, gt), ev_a=expected)

  def test_event_at_av_sums_counts(self):
    # Audio: 2 TP. Visual: 1 FP. Summed: 2TP/(2TP+FP) = 4/5, whereas the mean
    # of the per-modality F1s would be 0.5.
    pred = _clip(audio={0: [(0, 2), (4, 6)]}, visual={0: [(0, 3)]})
    gt = _clip(audio={0: [(0, 2), (4, 6)]})
    got = _scores(pred, gt)
    self.assertScores(got, ev_a=100.0, ev_v=0.0, ev_event=80.0,
                      seg_event=100.0 * 8 / 11, ev_av=0.0)

  def test_type_is_mean_of_a_v_av(self):
    pred = _clip(audio={0: [(0, 5)], 1: [(2, 9)]}, visual={0: [(0, 10)]})
    gt = _clip(audio={0: [(0, 4)]}, visual={0: [(3, 10)], 2: [(0, 1)]})
    got = _scores(pred, gt)
    for level in ("seg", "ev"):
      mean = np.mean([got[f"{level}_{m}"] for m in ("a", "v", "av")])
      self.assertAlmostEqual(got[f"{level}_type"], mean, places=9)

  def test_audio_visual_is_and_of_modalities(self):
    pred = _clip(audio={0: [(0, 6)]}, visual={0: [(4, 10)]})
    gt = _clip(audio={0: [(4, 6)]}, visual={0: [(4, 6)]})
    self.assertScores(_scores(pred, gt), seg_av=100.0, ev_av=100.0)


class ReferenceAgreementTest(parameterized.TestCase):

  @parameterized.parameters((0.1, 10, 25), (0.3, 10, 25), (0.6, 10, 4),
                            (0.5, 7, 5), (0.5, 1, 3), (0.4, 70, 2))
  def test_random_agrees_with_slow_reference(self, density, length, classes):
    rng = np.random.default_rng(int(density * 100) + length)
    arrays = [rng.random((60, length, classes)) < density for _ in range(4)]
    got = avvp.avvp_scores(*arrays)
    want = reference_scores(*arrays)
    for key in avvp.SCORE_KEYS:
      self.assertAlmostEqual(got[key], want[key], places=9, msg=key)

  def test_padding_does_not_change_scores(self):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, T + 1, size=40)
    padded = [np.zeros((40, 16, C), bool) for _ in range(4)]
    for n, length in enumerate(lengths):
      for x in padded:
        x[n, :length] = rng.random((length, C)) < 0.4
    batch = avvp.per_clip_scores(*padded)
    for n, length in enumerate(lengths):
      single = avvp.per_clip_scores(*(x[n:n + 1, :length] for x in padded))
      for key in avvp.SCORE_KEYS:
        self.assertAlmostEqual(batch[key][n], single[key][0], places=12)

  def test_per_clip_scores_concatenate_across_hosts(self):
    rng = np.random.default_rng(1)
    arrays = [rng.random((50, T, C)) < 0.3 for _ in range(4)]
    parts = [avvp.per_clip_scores(*(x[s] for x in arrays))
             for s in (slice(0, 20), slice(20, 50))]
    joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    self.assertEqual(avvp.summarize(joined), avvp.avvp_scores(*arrays))

  def test_fast_enough_for_llp_val_plus_test(self):
    rng = np.random.default_rng(2)
    arrays = [rng.random((1849, T, 25)) < 0.08 for _ in range(4)]
    times = []
    for _ in range(3):
      start = time.perf_counter()
      avvp.avvp_scores(*arrays)
      times.append(time.perf_counter() - start)
    print(f"avvp_scores on 1849 x 10 x 25: best {min(times) * 1e3:.1f} ms")
    self.assertLess(min(times), 0.1)


class InputsAndHelpersTest(absltest.TestCase):

  def test_accepts_zero_one_ints(self):
    pred, gt = _clip(audio={0: [(0, 3)]}), _clip(audio={0: [(0, 3)]})
    ints = [x.astype(np.int32) for x in pred + gt]
    self.assertEqual(avvp.avvp_scores(*ints), _scores(pred, gt))

  def test_rejects_bad_inputs(self):
    x = np.zeros((2, T, C), bool)
    with self.assertRaisesRegex(ValueError, "same shape"):
      avvp.avvp_scores(x, x, x, x[:1])
    with self.assertRaisesRegex(ValueError, "0/1"):
      avvp.avvp_scores(x, x, x, x + 0.5)
    with self.assertRaisesRegex(ValueError, r"\[N, T, C\]"):
      avvp.avvp_scores(x[0], x[0], x[0], x[0])
    with self.assertRaisesRegex(ValueError, "zero clips"):
      avvp.avvp_scores(x[:0], x[:0], x[:0], x[:0])

  def test_segment_predictions(self):
    frame = np.zeros((1, 2, 2, 2))
    frame[0, :, 0, 0] = [0.5, 0.4]  # audio, class 0
    frame[0, :, 1, 0] = [0.9, 0.9]  # visual, class 0
    frame[0, :, :, 1] = 0.9  # class 1 everywhere
    video_a, video_v = np.array([[0.5, 0.2]]), np.array([[0.1, 0.7]])
    audio, visual = avvp.segment_predictions(frame, video_a, video_v)
    np.testing.assert_array_equal(audio[0], [[True, False], [False, False]])
    np.testing.assert_array_equal(visual[0], [[False, True], [False, True]])
    audio, _ = avvp.segment_predictions(frame, video_a, video_v, threshold=0.3)
    np.testing.assert_array_equal(audio[0], [[True, False], [True, False]])
    with self.assertRaisesRegex(ValueError, r"\[N, C\]"):
      avvp.segment_predictions(frame, video_a[:, :1], video_v)


if __name__ == "__main__":
  absltest.main()
