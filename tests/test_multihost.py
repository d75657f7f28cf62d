"""Real multi-host run: 2 processes x 2 CPU devices via jax.distributed."""

import json
import os
import socket
import subprocess
import sys
import tempfile

from absl.testing import absltest
import pytest

from tests import testing_utils as tu

pytestmark = pytest.mark.slow  # two jax.distributed processes training end to end

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DRIVER = """
import json, sys
sys.path.insert(0, {repo!r})
from avjax.utils import runtime
runtime.initialize()
import jax
from avjax.trainers import avvp_weak
from tests.trainers import test_avvp_weak as t
c = t.tiny_config({data!r})
c.batch_size = c.eval_batch_size = 8
s = avvp_weak.train_and_evaluate(c, {workdir!r})
print("RESULT", json.dumps({{"process": jax.process_index(),
      "devices": jax.device_count(), "results": s["results"]}}))
"""


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run_processes(n, devices, data, workdir):
  port = free_port()
  procs = []
  for i in range(n):
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               AVJAX_DIST_INIT="1" if n > 1 else "0",
               AVJAX_COORDINATOR=f"127.0.0.1:{port}",
               AVJAX_NUM_PROCESSES=str(n), AVJAX_PROCESS_ID=str(i))
    code = DRIVER.format(repo=REPO, data=data, workdir=workdir)
    procs.append(subprocess.Popen([sys.executable, "-c", code], env=env,
                                  cwd=REPO, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True))
  outs = []
  for p in procs:
    out, err = p.communicate(timeout=600)
    if p.returncode:
      raise AssertionError(f"process failed ({p.returncode}):\n{err[-3000:]}")
    line = [l for l in out.splitlines() if l.startswith("RESULT ")][-1]
    outs.append(json.loads(line[len("RESULT "):]))
  return outs


class MultiHostTest(absltest.TestCase):

  def test_two_hosts_train_and_evaluate_every_clip_once(self):
    data = tempfile.mkdtemp()
    tu.write_fake_dataset(data, {"train": 64, "val": 19, "test": 21},
                          num_shards=4, lengths=(5, 3))
    multi = run_processes(2, 2, data, tempfile.mkdtemp())
    single = run_processes(1, 4, data, tempfile.mkdtemp())
    self.assertEqual([o["devices"] for o in multi], [4, 4])
    self.assertEqual(multi[0]["results"], multi[1]["results"])
    for o in multi + single:
      self.assertEqual(o["results"]["test"]["num_clips"], 21)
      self.assertEqual(o["results"]["val"]["num_clips"], 19)
    # Hosts read different shards, so the order of clips within a global batch
    # differs from the 1-process run; the metrics must still be close.
    for k in ("seg_a", "seg_v", "map"):
      self.assertAlmostEqual(multi[0]["results"]["test"][k],
                             single[0]["results"]["test"][k], delta=15.0)


if __name__ == "__main__":
  absltest.main()
