"""Test session setup: 8 simulated CPU devices before JAX is imported, and
one temporary root for everything the tests (and their subprocesses) write,
removed when the session ends, so no test leaks a temporary directory."""

import os
import shutil
import sys
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Every tempfile.mkdtemp()/TemporaryDirectory in the tests and in the
# subprocesses they start (TMPDIR is inherited) lands under this root.
_ROOT = tempfile.mkdtemp(prefix="avjax_tests_")
os.environ["TMPDIR"] = _ROOT
tempfile.tempdir = _ROOT
# One XLA compilation cache for the session: the many tests (and the
# subprocesses they start) that build the same small models compile each
# program once. Per session, so every run still compiles from scratch.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(_ROOT, "xla_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
# A size limit turns on the cache's file lock (the filelock package), so the
# processes that share it (pytest-xdist workers, the multi-host test's two
# hosts) never read an entry another one is still writing.
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(4 << 30))


def pytest_configure(config):
  config.addinivalue_line(
      "markers", "slow: end-to-end test (trains, spawns processes or runs the "
      "official code); deselect with -m 'not slow' for the fast lane")


def pytest_unconfigure(config):
  del config
  shutil.rmtree(_ROOT, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
  """The slow tests first (stable otherwise), so that pytest-xdist workers
  start the longest work early instead of ending on it."""
  del config
  items.sort(key=lambda item: item.get_closest_marker("slow") is None)
