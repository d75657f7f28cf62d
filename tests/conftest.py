"""Test session setup: 8 simulated CPU devices before JAX is imported."""

import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pytest_configure(config):
  config.addinivalue_line(
      "markers", "slow: long test needing optional tools (e.g. the official "
      "HAN code and torch); skipped cleanly when they are absent")
