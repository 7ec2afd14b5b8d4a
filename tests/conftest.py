"""Hypothesis profiles, chosen with HYPOTHESIS_PROFILE: dev, ci (default), thorough."""

import os

import pytest
from hypothesis import HealthCheck, settings

from verify.registry import single_thread

settings.register_profile("dev", max_examples=10, deadline=None)
settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests use small tensors: one thread, as `python -m verify` runs its checks."""
    with single_thread():
        yield
