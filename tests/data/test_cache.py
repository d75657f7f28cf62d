"""Write-once dataset cache: keyed by config and code, atomic, cleaned up."""

import dataclasses
import json
import os

from absl.testing import absltest

from avjax.data import cache
from avjax.data import tfrecord
from tests import testing_utils


@dataclasses.dataclass(frozen=True)
class Cfg:
  n: int = 1


def _writer(calls):
  def write(tmp):
    calls.append(tmp)
    with open(os.path.join(tmp, tfrecord.INFO_FILE), "w") as f:
      json.dump({"n": len(calls)}, f)
  return write


class CacheTest(absltest.TestCase):

  def test_writes_once_per_config_and_source(self):
    root, calls = testing_utils.make_tempdir(self), []
    a = cache.materialize(root, "toy", Cfg(1), b"v1", _writer(calls))
    self.assertEqual(cache.materialize(root, "toy", Cfg(1), b"v1",
                                       _writer(calls)), a)
    self.assertLen(calls, 1)
    b = cache.materialize(root, "toy", Cfg(2), b"v1", _writer(calls))
    c = cache.materialize(root, "toy", Cfg(1), b"v2", _writer(calls))
    self.assertLen({a, b, c}, 3)
    self.assertLen(calls, 3)
    self.assertTrue(os.path.basename(a).startswith("toy_"))
    self.assertEqual(sorted(os.listdir(root)), sorted(
        os.path.basename(p) for p in (a, b, c)))  # no temporary left

  def test_failed_write_leaves_nothing(self):
    root = testing_utils.make_tempdir(self)

    def broken(tmp):
      with open(os.path.join(tmp, "part"), "w") as f:
        f.write("x")
      raise ValueError("disk full")
    with self.assertRaisesRegex(ValueError, "disk full"):
      cache.materialize(root, "toy", Cfg(), b"", broken)
    self.assertEmpty(os.listdir(root))


if __name__ == "__main__":
  absltest.main()
