"""Cross-modality localization training pairs (AVDLN / DCCA)."""

from absl.testing import absltest
import jax.numpy as jnp
import numpy as np

from avjax.losses import cml


class PairMasksTest(absltest.TestCase):

  def test_pair_masks(self):
    y = np.eye(3)[[[2, 0, 0, 2]]]  # background = last class
    pos, neg = cml.pair_masks(jnp.asarray(y), jnp.ones((1, 4)))
    np.testing.assert_array_equal(pos, [[0, 1, 1, 0]])
    self.assertEqual(float(neg[0, 0, 0]), 0.0)  # diagonal
    self.assertEqual(float(neg[0, 0, 3]), 0.0)  # background x background
    self.assertEqual(float(neg[0, 0, 1]), 1.0)


if __name__ == "__main__":
  absltest.main()
