"""AVG grounding: connected components, margin loss, retrieval counts."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np
from scipy.sparse import csgraph

from avjax.losses import grounding
from configs import avvp_crossmodal


def bfs_components(adj: np.ndarray) -> np.ndarray:
  """Brute-force reference: BFS from every unlabeled node."""
  n = len(adj)
  labels = -np.ones(n, int)
  for s in range(n):
    if labels[s] >= 0:
      continue
    labels[s], todo = s, [s]
    while todo:
      u = todo.pop()
      for w in range(n):
        if (adj[u, w] or adj[w, u]) and labels[w] < 0:
          labels[w] = s
          todo.append(w)
  return labels


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
  return np.array_equal(a[:, None] == a[None], b[:, None] == b[None])


def normalize(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


class ComponentsTest(absltest.TestCase):

  def test_matches_bfs_and_scipy_on_random_graphs(self):
    rng = np.random.default_rng(0)
    adj = np.triu(rng.random((6, 14, 14)) < 0.12, 1)  # sparse, directed
    labels = np.asarray(jax.jit(grounding.connected_components)(
        jnp.asarray(adj)))
    for g in range(len(adj)):
      ref = bfs_components(adj[g])
      self.assertTrue(same_partition(labels[g], ref), (g, labels[g], ref))
      n, sp = csgraph.connected_components(adj[g], directed=False)
      self.assertEqual(len(set(labels[g].tolist())), n)
      self.assertTrue(same_partition(labels[g], sp))
      # a label is the smallest node of its component
      self.assertTrue(all(labels[g][i] <= i for i in range(14)))

  def test_chain_needs_many_rounds(self):
    n = 9
    adj = np.zeros((1, n, n), bool)
    adj[0, np.arange(1, n), np.arange(n - 1)] = True  # 8 -> 7 -> ... -> 0
    labels = grounding.connected_components(jnp.asarray(adj))
    np.testing.assert_array_equal(labels, np.zeros((1, n)))

  def test_threshold_graph_or_rule_and_padding(self):
    # nodes 0,1: same audio; 1,2: same visual; 3: padded copy of node 0
    a = np.array([[1, 0], [1, 0.01], [0, 1], [1, 0]], np.float32)[None]
    v = np.array([[1, 0], [0, 1], [0, 1.01], [1, 0]], np.float32)[None]
    m = np.array([[1, 1, 1, 0]], np.float32)
    pos, valid, labels = grounding.targets_from_inputs(
        a, v, m, scope="clip", audio_threshold=0.9, visual_threshold=0.9)
    self.assertTrue(same_partition(np.asarray(labels[0, :3]), np.zeros(3)))
    self.assertEqual(float(pos[0, 0, 3]), 0.0)  # padding is never positive
    self.assertEqual(float(valid.sum()), 9.0)

  def test_batch_scope_links_across_clips(self):
    a = np.eye(2, dtype=np.float32)[None].repeat(2, 0)  # clip b, node t: e_t
    v = np.stack([np.eye(2), np.eye(2)[::-1]]).astype(np.float32)
    m = np.ones((2, 2), np.float32)
    kw = dict(audio_threshold=0.9, visual_threshold=2.0)
    _, _, clip = grounding.targets_from_inputs(a, v, m, scope="clip", **kw)
    _, _, batch = grounding.targets_from_inputs(a, v, m, scope="batch", **kw)
    np.testing.assert_array_equal(clip, [[0, 1], [0, 1]])
    np.testing.assert_array_equal(batch, [[0, 1, 0, 1]])


def compute_gt(vid, aud, sil):
  """NumPy transcription of the official compute_gt.py for one clip:
  vid [10, Dv] (8-frame means), aud [10, 128], sil [128] -> gt [10, 10]."""
  cos = lambda x, y: x @ y / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-6)
  silent = [cos(a, sil) > 0.99 for a in aud]
  parent = list(range(10))

  def find(i):
    return i if parent[i] == i else find(parent[i])

  for i in range(10):
    for j in range(i + 1, 10):
      if cos(vid[i], vid[j]) > 0.96 and not silent[i] and cos(
          aud[i], aud[j]) > 0.99:
        p1, p2 = find(i), find(j)
        parent[p1] = min(parent[p1], parent[p2])
        parent[p2] = min(parent[p1], parent[p2])
  root = [find(i) for i in range(10)]
  return np.array([[root[i] == root[j] for j in range(10)]
                   for i in range(10)], np.float32)


def reference_like_clips(b=4, seed=0):
  """Clips whose snippets share audio only, visual only, both, or are
  silent: audio/visual prototypes per snippet plus small noise."""
  rng = np.random.default_rng(seed)
  sil = np.asarray(grounding.LLP_SILENT_AUDIO, np.float32)
  audio = np.zeros((b, 10, 128), np.float32)
  visual = np.zeros((b, 80, 16), np.float32)
  for k in range(b):
    a_proto = rng.uniform(0, 1, (4, 128))
    v_proto = rng.uniform(0, 1, (4, 16))
    a_id = rng.integers(0, 4, 10)
    v_id = rng.integers(0, 4, 10)
    aud = a_proto[a_id] + rng.normal(0, 0.005, (10, 128))
    vis = v_proto[v_id] + rng.normal(0, 0.01, (10, 16))
    quiet = rng.choice(10, 3, replace=False)  # silent snippets, same frames
    aud[quiet] = sil + np.abs(rng.normal(0, 0.002, (3, 128)))
    vis[quiet] = v_proto[0]
    audio[k] = aud
    visual[k] = np.repeat(vis, 8, axis=0) + rng.normal(0, 0.01, (80, 16))
  return audio, visual


class ReferenceRuleTest(absltest.TestCase):
  """The data=llp default is the official compute_gt.py rule."""

  def test_silent_embedding_is_the_official_one(self):
    sil = np.asarray(grounding.LLP_SILENT_AUDIO, np.float32)
    self.assertEqual((sil.shape, int((sil > 0).sum())), ((128,), 57))
    np.testing.assert_allclose([sil[3], sil[12], np.linalg.norm(sil)],
                               [0.2957465, 0.5866772, 2.1915755], rtol=1e-6)

  def test_llp_default_matches_compute_gt(self):
    avg = avvp_crossmodal.get_config("data=llp,variant=pretrain_e2e").avg
    self.assertEqual((avg.pos_margin, avg.neg_margin), (0.7, 0.7))
    audio, visual = reference_like_clips()
    batch = {"audio": jnp.asarray(audio), "visual": jnp.asarray(visual),
             "segment_mask": jnp.ones((4, 10))}
    pos, valid = grounding.ground_truth(batch, avg)
    want = np.stack([compute_gt(visual[k].reshape(10, 8, -1).mean(1),
                                audio[k], np.asarray(
                                    grounding.LLP_SILENT_AUDIO, np.float32))
                     for k in range(4)])
    np.testing.assert_array_equal(np.asarray(pos), want)
    np.testing.assert_array_equal(np.asarray(valid), np.ones_like(want))
    # The clips tell the rules apart: links on audio only, visual only
    # and between silent snippets exist, and the synthetic rule makes them.
    self.assertGreater(want.sum(), 40)
    syn = avvp_crossmodal.get_config("variant=pretrain_e2e").avg
    self.assertEqual(syn.link, "any")
    other, _ = grounding.ground_truth(batch, syn)
    self.assertGreater(float(np.asarray(other).sum()), want.sum() + 20)

  def test_silence_only_checks_the_earlier_snippet(self):
    """compute_gt.py tests silent_aud[i] for i < j only."""
    sil = np.asarray(grounding.LLP_SILENT_AUDIO, np.float64)
    s = sil / np.linalg.norm(sil)
    u = np.eye(128)[0]  # orthogonal to s (sil[0] == 0)
    at = lambda deg: np.cos(np.radians(deg)) * s + np.sin(np.radians(deg)) * u
    # cos(., silence) > 0.99 below 8.1 degrees: 0 loud (10), 1 silent (5),
    # their audio cosine cos(5 degrees) > 0.99.
    loud = at(10.0).astype(np.float32)
    audio = np.stack([loud, at(5.0)]).astype(np.float32)[None]
    vis = np.ones((1, 2, 4), np.float32)
    g = lambda a: np.asarray(grounding.similarity_graph(
        jnp.asarray(a), jnp.asarray(vis), jnp.ones((1, 2)), 0.99, 0.96,
        "all", 0.99))[0]
    self.assertFalse(bool(grounding.silent(jnp.asarray(loud[None, None]),
                                           0.99)[0, 0]))
    self.assertTrue(g(audio)[0, 1])
    self.assertFalse(g(audio[:, ::-1]).any())


class MarginLossTest(absltest.TestCase):

  def test_margin_loss_hand_value(self):
    sim = np.array([[[0.9, 0.5], [0.1, -0.3]]], np.float32)
    pos = np.array([[[1, 1], [0, 0]]], np.float32)
    valid = np.array([[[1, 1], [1, 0]]], np.float32)
    # hinges: [0.8-0.9]+=0, [0.8-0.5]+=0.3, [0.1-0.2]+=0, (masked)
    got = grounding.margin_loss(sim, pos, valid, 0.8, 0.2)
    np.testing.assert_allclose(got, 0.3 / 3, rtol=1e-6)

  def test_avg_loss_kinds_match_numpy(self):
    rng = np.random.default_rng(1)
    a, v = rng.normal(size=(2, 2, 4, 3)).astype(np.float32)
    pos = (rng.random((2, 4, 4)) < 0.5).astype(np.float32)
    pos = np.maximum(pos, np.eye(4))
    valid = np.ones((2, 4, 4), np.float32)
    valid[1, 3, :] = valid[1, :, 3] = 0
    pos = pos * valid
    p, n = 0.7, 0.1

    def ref(x, y, w):
      s = np.einsum("gnd,gmd->gnm", normalize(x), normalize(y))
      h = pos * np.maximum(p - s, 0) + (1 - pos) * np.maximum(s - n, 0)
      return (h * w).sum() / w.sum()
    off = valid * (1 - np.eye(4))
    want_uni = 0.5 * (ref(a, a, off) + ref(v, v, off))
    want_cross = 0.5 * (ref(a, v, valid) +
                        ref(v, a, np.swapaxes(valid, 1, 2)))
    for kind, want in (("uni", want_uni), ("cross", want_cross),
                       ("multi", want_uni + want_cross)):
      got = grounding.avg_loss(a, v, pos, valid, kind=kind, pos_margin=p,
                               neg_margin=n)["loss"]
      np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=kind)
    with self.assertRaisesRegex(ValueError, "kind='bad'"):
      grounding.avg_loss(a, v, pos, valid, kind="bad", pos_margin=p,
                         neg_margin=n)

  def test_retrieval_counts(self):
    e = np.eye(3, dtype=np.float32)[None]
    # v_j = e_{j-1}: audio i is most similar to visual (i + 1) % 3
    v = np.roll(e, 1, axis=1)
    pos = np.array([[[1, 1, 0], [0, 1, 0], [0, 0, 1]]], np.float32)
    valid = np.ones((1, 3, 3), np.float32)
    c = grounding.count_metrics(jax.device_get(grounding.retrieval_counts(
        e, v, pos, valid, 0.5)))
    sim = np.einsum("gnd,gmd->gnm", e, v)[0]
    hits = [pos[0, i, sim[i].argmax()] for i in range(3)]
    self.assertAlmostEqual(c["a2v_r1"], 100 * np.mean(hits), places=4)
    self.assertAlmostEqual(c["chance_r1"], 100 * 4 / 9, places=4)
    self.assertAlmostEqual(c["pos_rate"], 100 * 4 / 9, places=4)
    # a-a and v-v cosines are 0 off the diagonal: every off-diagonal pair is
    # called negative, right for 5 of the 6 (pos[0, 1] is the miss).
    self.assertAlmostEqual(c["uni_acc"], 100 * 10 / 12, places=4)


if __name__ == "__main__":
  absltest.main()
