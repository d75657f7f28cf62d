"""Voting, union, Top-K, F1 and the Table 3/4 analyses, by hand."""

from absl.testing import absltest
import numpy as np

from avjax.metrics import event_heads as m

HEADS = ("continuous", "instant", "onset", "visual", "audio")


def logits_of(tops, confs, c=4):
  """[N, H, C] logits whose head h picks tops[n][h] with prob ~confs[n][h]."""
  out = np.zeros((len(tops), len(tops[0]), c))
  for n, (ts, cs) in enumerate(zip(tops, confs)):
    for h, (t, p) in enumerate(zip(ts, cs)):
      out[n, h, t] = np.log(p * (c - 1) / (1 - p))
  return out


class EventHeadsMetricsTest(absltest.TestCase):

  def test_vote_majority_and_confidence_tie_break(self):
    lg = logits_of([[1, 1, 2, 3, 1],      # majority 1
                    [0, 0, 2, 2, 3],      # 2-2 tie: most confident of them
                    [0, 1, 2, 3, 3]],     # 3 has two votes
                   [[.5] * 5, [.5, .6, .5, .9, .99], [.9, .5, .5, .4, .4]])
    np.testing.assert_array_equal(m.vote(lg), [1, 2, 3])
    lg = logits_of([[0, 1, 2, 3]], [[.3, .4, .9, .5]])  # no two agree
    self.assertEqual(m.vote(lg)[0], 2)

  def test_union_topk_f1(self):
    lg = logits_of([[1, 1, 2, 3, 1], [0, 0, 0, 0, 0]], [[.5] * 5] * 2)
    u = m.union(lg)
    np.testing.assert_array_equal(u, [[0, 1, 1, 1], [1, 0, 0, 0]])
    truth = np.array([[0, 1, 1, 0], [1, 0, 0, 1]])
    f = m.f1_scores(u, truth)
    # tp = 2 + 1, predicted 4, true 4 -> micro 6/8; per clip 4/5, 2/3.
    self.assertAlmostEqual(f["micro"], 75.0)
    self.assertAlmostEqual(f["sample"], 100 * (0.8 + 2 / 3) / 2)
    p = np.array([[.1, .5, .3, .1]])
    np.testing.assert_array_equal(m.top_k(p, 2), [[0, 1, 1, 0]])

  def test_paired_bootstrap_f1(self):
    rng = np.random.default_rng(0)
    truth = rng.random((200, 6)) < 0.3
    noisy = truth ^ (rng.random(truth.shape) < 0.25)
    same = m.paired_bootstrap_f1(noisy, noisy, truth, num_samples=200)
    self.assertEqual((same["diff"], same["lo"], same["hi"]), (0.0, 0.0, 0.0))
    better = m.paired_bootstrap_f1(truth, noisy, truth, num_samples=500)
    want = 100.0 - m.f1_scores(noisy, truth)["micro"]
    self.assertAlmostEqual(better["diff"], want, places=4)
    self.assertGreater(better["lo"], 0.0)
    self.assertLess(better["lo"], better["diff"])
    self.assertGreater(better["hi"], better["diff"])
    self.assertEqual(better["p_a_wins"], 1.0)
    worse = m.paired_bootstrap_f1(noisy, truth, truth, num_samples=500)
    self.assertAlmostEqual(worse["hi"], -better["lo"], places=4)  # same idx
    with self.assertRaisesRegex(ValueError, "shapes differ"):
      m.paired_bootstrap_f1(truth[:5], noisy, truth)

  def test_score_and_correctness_with_and_without_primary(self):
    lg = logits_of([[1, 1, 2, 3, 1], [0, 2, 2, 0, 0]], [[.6] * 5] * 2)
    labels = np.array([[0, 1, 1, 0], [0, 0, 1, 0]], np.float32)
    primary = np.array([[0, 0, 1, 0], [0, 0, 1, 0]], np.float32)
    s = m.score(lg, labels, primary, HEADS)
    self.assertAlmostEqual(s["acc"], 0.0)        # votes 1 and 0
    self.assertAlmostEqual(s["acc_onset"], 100.0)
    self.assertAlmostEqual(s["acc_instant"], 50.0)
    s = m.score(lg, labels, None, HEADS)          # hit in the label set
    self.assertAlmostEqual(s["acc"], 50.0)
    self.assertAlmostEqual(s["card_union"], 2.5)

  def test_complementarity_counts(self):
    lg = logits_of([[2, 0, 0, 0, 0],   # only continuous right
                    [0, 2, 0, 0, 0],   # only instant right
                    [0, 2, 2, 0, 0],   # instant and onset, not continuous
                    [2, 2, 0, 0, 0]],  # continuous and instant
                   [[.5] * 5] * 4)
    primary = np.eye(4)[[2, 2, 2, 2]]
    c = m.complementarity(lg, primary, primary, HEADS)
    self.assertEqual(c, {"continuous": 1, "instant": 1, "onset": 0,
                         "(ins|ons)&~cont": 2, "num_clips": 4})

  def test_dominant_types(self):
    # Class 0: onset head most confident on 2 of 3 clips; class 1: audio.
    lg = logits_of([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0],
                    [1, 1, 1, 1, 1]],
                   [[.5, .6, .9, .5, .5], [.5, .5, .8, .5, .5],
                    [.9, .5, .5, .5, .5], [.5, .5, .5, .5, .7]])
    primary = np.eye(4)[[0, 0, 0, 1]]
    assigned, votes = m.dominant_types(lg, primary, primary, HEADS)
    np.testing.assert_array_equal(assigned, [2, 4, -1, -1])
    np.testing.assert_array_equal(votes[0], [1, 0, 2, 0, 0])

  def test_dominant_types_paper_logits_vs_logprob(self):
    # Head 0 is sharper (rival logits lower), head 1 has the larger raw
    # output on the true class: the paper's argmax_i O_{i,y} picks head 1,
    # log-softmax picks head 0.
    lg = np.zeros((1, 5, 3))
    lg[0, 0] = [2.0, -3.0, -3.0]
    lg[0, 1] = [3.0, 2.5, 2.5]
    primary = np.eye(3)[[0]]
    self.assertEqual(m.dominant_types(lg, primary, primary, HEADS,
                                      "logit")[0][0], 1)
    self.assertEqual(m.dominant_types(lg, primary, primary, HEADS)[0][0], 0)
    with self.assertRaisesRegex(ValueError, "score"):
      m.dominant_types(lg, primary, primary, HEADS, "prob")

  def test_dominant_types_relative(self):
    # Class 0 (a visual event): continuous p(y) .9, visual head .85; class 1
    # (an audio event): continuous .9, visual head .1. By log p the
    # continuous head wins both; relative to each head's mean log p(true)
    # the visual head is above its usual confidence on class 0 and wins it.
    lg = logits_of([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1],
                    [1, 1, 1, 1, 1]],
                   [[.9, .5, .5, .85, .5]] * 2 + [[.9, .5, .5, .1, .8]] * 2)
    primary = np.eye(4)[[0, 0, 1, 1]]
    self.assertEqual(list(m.dominant_types(lg, primary, primary,
                                           HEADS)[0][:2]), [0, 0])
    assigned, votes = m.dominant_types(lg, primary, primary, HEADS,
                                       "relative")
    np.testing.assert_array_equal(assigned[:2], [3, 4])
    np.testing.assert_array_equal(votes[0], [0, 0, 0, 2, 0])
    # The centring uses only heads with evidence: an abstaining onset head
    # neither wins nor shifts its mean.
    valid = np.ones((4, 5), bool)
    valid[0, 2] = False
    lg2 = lg.copy()
    lg2[0, 2] = 50.0
    _, votes2 = m.dominant_types(lg2, primary, primary, HEADS, "relative",
                                 valid)
    np.testing.assert_array_equal(votes2, votes)

  def test_head_profile_per_group(self):
    # Classes 0, 1 in group 0, class 2 in group 1; 3 clips of group 0, one
    # of group 1. Head 2 (onset) abstains on clip 1.
    lg = logits_of([[0, 1, 0, 0, 1], [1, 1, 2, 1, 0], [1, 0, 1, 1, 1],
                    [2, 2, 2, 0, 0]],
                   [[.9, .5, .6, .5, .5], [.5, .5, .9, .8, .5],
                    [.5, .5, .5, .5, .5], [.5, .5, .7, .5, .5]], c=3)
    primary = np.eye(3)[[0, 1, 1, 2]]
    valid = np.ones((4, 5), bool)
    valid[1, 2] = False
    prof = m.head_profile(lg, primary, primary, [0, 0, 1], 2, valid)
    np.testing.assert_array_equal(prof["clips"], [3, 1])
    # Group 0 (clips 0-2): continuous and visual right on all three,
    # instant on 1, onset on 0 and 2 (abstains on 1), audio on 2.
    np.testing.assert_allclose(prof["acc"][0],
                               [100, 100 / 3, 200 / 3, 100, 100 / 3])
    np.testing.assert_allclose(prof["acc"][1], [100, 100, 100, 0, 0])
    np.testing.assert_array_equal(prof["specialist"], [0, 0])
    logp = m.log_softmax(lg)
    np.testing.assert_allclose(prof["logp"][0, 2],
                               (logp[0, 2, 0] + logp[2, 2, 1]) / 2)
    np.testing.assert_allclose(prof["logp"][1, 2], np.log(.7))
    np.testing.assert_allclose(prof["logp"][0, 0], np.mean(
        [np.log(.9), logp[1, 0, 1], logp[2, 0, 1]]))
    prof = m.head_profile(lg, primary, primary, [0, 0, 0], 2)
    np.testing.assert_array_equal(prof["specialist"], [0, -1])
    self.assertTrue(np.isnan(prof["logp"][1]).all())

  def test_onset_head_without_onsets_gives_no_prediction(self):
    # Clip 0 has no onset: its onset head (index 2) does not vote, is not in
    # the union, cannot be the dominant head and is not right; clip 1 has.
    valid = m.head_valid(HEADS, np.array([[0, 0, 0], [0, 1, 0]]), 2)
    np.testing.assert_array_equal(valid[:, 2], [False, True])
    self.assertTrue(valid[:, [0, 1, 3, 4]].all())
    lg = logits_of([[2, 1, 2, 3, 3]] * 2, [[.5, .5, .99, .6, .6]] * 2)
    np.testing.assert_array_equal(m.vote(lg), [2, 2])  # 2-2 tie: onset
    np.testing.assert_array_equal(m.vote(lg, valid), [3, 2])
    primary = np.eye(4)[[2, 2]]
    _, votes = m.dominant_types(lg, primary, primary, HEADS, "logprob",
                                valid)
    np.testing.assert_array_equal(votes[2], [1, 0, 1, 0, 0])
    c = m.complementarity(lg, primary, primary, HEADS, valid)
    self.assertEqual((c["continuous"], c["onset"]), (1, 0))
    lg = logits_of([[0, 1, 2, 3, 3]] * 2, [[.5] * 5] * 2)
    np.testing.assert_array_equal(m.union(lg, valid),
                                  [[1, 1, 0, 1], [1, 1, 1, 1]])

if __name__ == "__main__":
  absltest.main()
