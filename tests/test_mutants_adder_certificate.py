"""The trig-identity adder's float64 certificates (verify/adder_certificate.py, the all-pairs
`brute_force` of verify/adder_pairs.py) and the rounding bounds they share (verify/rounding.py):
each error term recomputed from its stated formula, each refusal's reason, the chunking and the
reported numbers pinned (mutation testing, issue 13)."""

from __future__ import annotations

import math
import time
from fractions import Fraction as Fr

import pytest
import torch

from constructions import modular
from verify import adder_certificate as ac
from verify import adder_pairs, rounding

U = Fr(1, 2**53)


def gam(n: int) -> Fr:
    return n * U / (1 - n * U)


def timed(fn, *args, **kwargs):
    """fn's result and the wall time around the call: a reported "seconds" must lie in [0, it]."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def two_structure_errors(p: int = 7) -> modular.ModularAdder:
    """W_Q and b_in nonzero: two refusals, W_Q's first (parameter order)."""
    adder = modular.build_adder(p)
    with torch.no_grad():
        adder.transformer.blocks[0].attn.W_Q[0, 0, 0] = 0.5
        adder.transformer.blocks[0].mlp.b_in[0] = 0.5
    return adder


# --- brute_force -----------------------------------------------------------------------------


def test_brute_force_refuses_with_the_first_structure_error():
    """brute_force reads W_E and W_U only, so without the guard a nonzero W_Q would pass."""
    adder = two_structure_errors()
    errors = ac.structure_errors(adder)
    assert len(errors) == 2 and "W_Q" in errors[0] and "b_in" in errors[1]
    out, elapsed = timed(adder_pairs.brute_force, adder)
    assert set(out) == {"certified", "reason", "seconds"}
    assert out["certified"] is False and out["reason"] == errors[0]
    assert 0 <= out["seconds"] <= elapsed
    # a refused certificate carries no bounds: brute_force runs the guard itself
    assert adder_pairs.brute_force(adder, cert=ac.certify(adder))["reason"] == errors[0]


@pytest.mark.parametrize("eps_e, rho_u, delta_r", [(0.01, 1.5, 0.0), (0.25, 0.5, 1e-12)])
def test_brute_force_error_is_the_stated_formula(eps_e, rho_u, delta_r):
    """error = delta_R + m rho_U (e_prod + gamma_2m (amp^2 + e_prod)) SLACK, amp = 1 + eps_E,
    e_prod = sqrt(2) gamma_2 amp^2 (one complex product of two entries of modulus <= amp)."""
    adder = modular.build_adder(11)                                  # m = 5
    out, elapsed = timed(adder_pairs.brute_force, adder,
                         cert={"eps_E": eps_e, "rho_U": rho_u, "delta_R": delta_r})
    m, amp = 5, 1 + Fr(eps_e)
    prod = Fr(math.sqrt(2)) * gam(2) * amp**2
    want = Fr(delta_r) + m * Fr(rho_u) * (prod + gam(2 * m) * (amp**2 + prod)) * Fr(rounding.SLACK)
    assert out["error_bound"] == pytest.approx(float(want), rel=1e-13, abs=0)
    assert out["p"] == 11 and out["flops"] == 2 * 11**3 * 2 * 5
    assert 0 <= out["seconds"] <= elapsed
    assert set(out) == {"certified", "p", "min_margin", "error_bound", "seconds", "flops"}


def test_brute_force_computes_the_bounds_it_is_not_handed():
    adder = modular.build_adder(13)
    cert = ac.certify(adder)
    mine = adder_pairs.brute_force(adder)
    assert mine == {**adder_pairs.brute_force(adder, cert=cert), "seconds": mine["seconds"]}


def test_brute_force_passes_its_chunk_on(monkeypatch):
    seen = []
    original = adder_pairs.pair_chunks

    def spy(p, chunk=None):
        seen.append(chunk)
        return original(p, chunk)
    monkeypatch.setattr(adder_pairs, "pair_chunks", spy)
    adder = modular.build_adder(7)
    chunked = adder_pairs.brute_force(adder, chunk=5)
    assert seen == [5]
    assert chunked["min_margin"] == adder_pairs.brute_force(adder)["min_margin"]
