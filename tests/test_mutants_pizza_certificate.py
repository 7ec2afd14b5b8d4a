"""The pizza certificate's range sweep and record (verify/pizza_certificate.py): the hidden width
it is handed, the compact (pair-free) certificate it runs, the worst ratio it reports and the p
it sorts into each list, pinned (mutation testing, issue 13)."""

from __future__ import annotations

import math
import time

import pytest

from constructions import pizza
from verify import pizza_certificate as pc


def timed(fn, *args, **kwargs):
    """fn's result and the wall time around the call: a reported "seconds" must lie in [0, it]."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def ratio(cert: dict) -> float:
    return cert["margin_lower_bound"] / (2 * (cert["delta_R"] + cert["delta_W"]))


@pytest.fixture(scope="module")
def edge_sweep():
    """d = 64 at the record's edge: 5200 certified in float64, 5201 proved in real arithmetic
    only (proofs/data/pizza_range.json)."""
    return timed(pc.certify_range, range(5200, 5202))


def test_range_sorts_each_p_into_its_list_and_reports_the_worst_ratio(edge_sweep):
    out, elapsed = edge_sweep
    assert out["certified"] == [5200] and out["real_arithmetic_only"] == [5201]
    assert out["condition_fails"] == []
    cert = pc.certify_pizza(pizza.build_pizza(5200, 64), all_pairs=False)
    assert out["min_ratio_L_over_2_error"] == ratio(cert)          # 1.0002...: just above 1
    assert 1 < out["min_ratio_L_over_2_error"] < 1.001
    assert 0 <= out["seconds"] <= elapsed


def test_range_uses_the_hidden_width_it_is_handed():
    """hidden = 16 (m = 8) at d = 4: p = 18..20 satisfy the condition, which m = d = 4 does not."""
    assert not pizza.condition_holds(18, 4) and pizza.condition_holds(20, 8)
    out = pc.certify_range(range(18, 21), d=4, hidden=16)
    assert out["certified"] == [18, 19, 20] and out["condition_fails"] == []
    worst = min(ratio(pc.certify_pizza(pizza.build_pizza(p, 4, 16), all_pairs=False))
                for p in (18, 19, 20))
    assert out["min_ratio_L_over_2_error"] == worst
    # the default width 2d: the same moduli fail the condition
    assert pc.certify_range(range(18, 21), d=4)["condition_fails"] == [18, 19, 20]


def test_range_runs_the_compact_certificate_only(monkeypatch):
    """The sweep is O(weights) per p: the all-pairs forward is never run."""
    def no_pairs(model):
        raise AssertionError("certify_range ran the all-pairs forward")
    monkeypatch.setattr(pc, "all_pairs_margin", no_pairs)
    out = pc.certify_range(range(2, 6), d=4)
    assert out["certified"] == [2, 3, 4, 5]
    assert math.isfinite(out["min_ratio_L_over_2_error"])


def test_empty_range_reports_infinite_ratio():
    out, elapsed = timed(pc.certify_range, range(2, 2))
    assert out["certified"] == out["real_arithmetic_only"] == out["condition_fails"] == []
    assert out["min_ratio_L_over_2_error"] == math.inf and 0 <= out["seconds"] <= elapsed
