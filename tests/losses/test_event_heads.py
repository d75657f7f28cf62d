"""Multi-head CE and the single-label reduction."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from avjax.losses import event_heads


class EventHeadsLossTest(absltest.TestCase):

  def test_single_label_targets(self):
    labels = jnp.array([[0, 1, 0, 0], [1, 0, 1, 1], [0, 0, 0, 0]], jnp.float32)
    np.testing.assert_array_equal(
        event_heads.single_label_targets(labels),
        [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    ids = jnp.zeros((3, 4), jnp.uint8).at[1, 0].set(2)  # hash 2 -> 3rd label
    got = np.asarray(event_heads.single_label_targets(labels, ids))
    np.testing.assert_array_equal(got, [[0, 1, 0, 0], [0, 0, 0, 1],
                                        [0, 0, 0, 0]])

  def test_loss_is_sum_of_head_cross_entropies(self):
    logits = jax.random.normal(jax.random.PRNGKey(0), (3, 2, 4))
    y = jnp.eye(4)[jnp.array([0, 3, 1])]
    terms = event_heads.multi_head_loss(logits, y, ("a", "b"))
    lp = np.asarray(jax.nn.log_softmax(logits, -1))
    want = [-np.mean([lp[i, h, k] for i, k in enumerate([0, 3, 1])])
            for h in range(2)]
    self.assertAlmostEqual(float(terms["loss_a"]), want[0], places=5)
    self.assertAlmostEqual(float(terms["loss_b"]), want[1], places=5)
    self.assertAlmostEqual(float(terms["loss"]), sum(want), places=5)
    w = jnp.array([1.0, 0.0, 1.0])
    t = event_heads.multi_head_loss(logits, y, ("a", "b"), w)
    self.assertAlmostEqual(float(t["loss_a"]),
                           -(lp[0, 0, 0] + lp[2, 0, 1]) / 2, places=5)


if __name__ == "__main__":
  absltest.main()
