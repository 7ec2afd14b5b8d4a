"""The trig-identity adder: construction vs reference, the exact condition, sound certificates,
broken constructions that must fail, and bad input (claims modular.*, worked_example_3.mod5)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from hypothesis import example, given, note
from hypothesis import strategies as st

from constructions import modular
from tests import strategies
from verify import cli
from verify.claims import modular as claims

# --- construction vs reference ----------------------------------------------------------------


@given(data=st.data(), p=st.integers(2, 5000))
@example(data=None, p=5)
def test_adder_adds_for_random_p_pairs_and_admissible_freqs(data, p):
    if data is None:  # the section's own case: p = 5, E(x) = (cos 2 pi x/5, sin 2 pi x/5)
        ks = (1,)
        x, y = torch.arange(5).repeat_interleave(5), torch.arange(5).repeat(5)
    else:
        ks = data.draw(strategies.admissible_freqs(p=p), label="freqs")
        x, y = data.draw(strategies.residue_pairs(p=p), label="pairs")
    adder = modular.build_adder(p, ks)
    logits = adder(x, y)                                            # [batch, p]
    assert logits.shape == (len(x), p)
    assert torch.equal(logits.argmax(1), (x + y) % p)
    c = torch.arange(p)
    ideal = modular.ideal_logits(p, ks, (x + y)[:, None] - c[None, :])
    bound = claims.rounding_bound(adder) + len(ks) * 1e-14          # + weight rounding (< 3e-16 |K|)
    note(f"max deviation {float((logits - ideal).abs().max())}, bound {bound}")
    assert float((logits - ideal).abs().max()) <= bound
    cert = claims.certify(adder)
    assert cert["certified"]
    # every admissible K has margin >= 2 sin^2(pi/p); K = {1} attains it
    assert cert["min_margin"] >= modular.margin_lower_bound(p) - 2 * cert["error_bound"]
    if ks == (1,):
        assert abs(cert["min_margin"] - modular.margin_lower_bound(p)) <= 2 * cert["error_bound"]


@given(p=st.integers(2, 160))
@example(p=5)
@example(p=2)
@example(p=4)
def test_default_freqs_give_the_dirichlet_margin(p):
    adder = modular.build_adder(p)
    assert adder.freqs == modular.default_freqs(p)
    cert = claims.certify(adder)
    assert cert["certified"]
    assert abs(cert["min_margin"] - modular.dirichlet_margin(p)) <= 2 * cert["error_bound"]


def test_dirichlet_margin_closed_form_values():
    assert modular.dirichlet_margin(2) == 2 and modular.dirichlet_margin(3) == 1.5
    assert modular.dirichlet_margin(4) == 1 and modular.dirichlet_margin(1009) == 504.5
    assert modular.dirichlet_margin(100) == 49
    assert modular.margin_lower_bound(5) == pytest.approx((5 - math.sqrt(5)) / 4, rel=1e-15)


def test_parameters_are_the_transformer_weights_with_transformerlens_names():
    adder = modular.build_adder(7)
    names = [n for n, _ in adder.named_parameters()]
    assert names == list(adder.transformer.cfg.parameter_shapes())
    assert list(adder.state_dict()) == names
    norm = sum(float(w.square().sum()) for w in adder.parameters())
    assert norm == pytest.approx(sum(float(w.square().sum()) for w in adder.transformer.parameters()))
    tokens = adder.tokens(torch.tensor([3]), torch.tensor([6]))
    _, cache = adder.transformer.run_with_cache(tokens)
    assert torch.equal(cache["blocks.0.attn.hook_pattern"][0, 0, 1],
                       torch.tensor([0.5, 0.5], dtype=torch.float64))


# --- the exact condition ----------------------------------------------------------------------


def test_condition_holds_for_every_frequency_set_of_small_moduli():
    ok, evidence = claims.check_condition_all_subsets(range(2, 11))
    assert ok, evidence


@given(p=st.integers(4, 400), data=st.data())
def test_inadmissible_freqs_are_rejected_and_tie_when_forced(p, data):
    divisors = [g for g in range(2, p) if p % g == 0]
    if not divisors:
        return
    g = data.draw(st.sampled_from(divisors), label="common factor")
    multiples = data.draw(st.lists(st.integers(1, (p - 1) // g), min_size=1, max_size=3,
                                   unique=True), label="multiples")
    ks = tuple(g * k for k in multiples)
    with pytest.raises(ValueError, match="freqs"):
        modular.build_adder(p, ks)
    broken = modular.build_unchecked(p, ks)
    assert claims.ties_exactly(p, ks)
    assert not claims.certify(broken)["certified"]
    assert not claims.brute_force(broken)["certified"]


def test_inadmissible_freqs_break_the_network_and_the_claim_check():
    broken = modular.build_unchecked(6, (2, 4))
    assert not claims.network_all_pairs(broken)["correct"]
    ok, evidence = claims.check_adder_exact(range(6, 7), build=lambda p: broken)
    assert not ok and evidence["failures"]


# --- broken constructions: every check must fail -----------------------------------------------


def _broken(p: int, name: str, index: tuple[int, ...], delta: float):
    adder = modular.build_adder(p)
    with torch.no_grad():
        dict(adder.named_parameters())[name][index] += delta
    return adder


@pytest.mark.parametrize("name,index", [
    ("blocks.0.mlp.W_in", (0, 0)),          # a dyadic weight changed (S_cos -> n0 is at row 2m)
    ("blocks.0.mlp.W_out", (0, 0)),
    ("blocks.0.attn.W_O", (0, 0, 0)),
    ("blocks.0.attn.W_Q", (0, 0, 0)),
    ("unembed.W_U", (0, 0)),                # W_U reading slot B
])
def test_wrong_weight_fails_the_certificate(name, index):
    adder = _broken(7, name, index, 0.25)
    assert claims.structure_errors(adder)
    assert not claims.certify(adder)["certified"]
    assert not claims.brute_force(adder)["certified"]
    ok, _ = claims.check_adder_exact(range(7, 8), build=lambda p: adder)
    assert not ok


def test_wrong_mlp_weight_fails_the_symbolic_forward_and_mod5():
    adder = modular.build_adder(5)
    with torch.no_grad():
        adder.transformer.blocks[0].mlp.W_out[0, 8] = 0.5          # 1/4 -> 1/2 on x+^2
    ok, results = claims.check_trig_identity(adder)
    assert not ok and not results["network_forward_symbolic"]
    one = modular.build_adder(5, (1,))
    with torch.no_grad():
        one.transformer.blocks[0].mlp.W_in[2, 0] = 2.0
    assert not claims.check_mod5(one)[0]


def test_embedding_errors_are_bounded_not_ignored():
    tiny = _broken(11, "embed.W_E", (3, 0), 1e-12)                  # still certified, larger eps_E
    cert = claims.certify(tiny)
    assert cert["certified"] and cert["eps_E"] >= 1e-12
    big = _broken(11, "embed.W_E", (3, 0), 0.7)
    assert not claims.certify(big)["certified"]


def test_wrong_modulus_fails():
    """Weights of the mod-8 adder relabelled as a mod-7 adder (the embedding's angles are 2 pi x/8)."""
    adder = modular.build_adder(7, (1,))
    with torch.no_grad():
        angle = torch.arange(7, dtype=torch.float64) * 2 * math.pi / 8
        adder.transformer.embed.W_E[:, 0], adder.transformer.embed.W_E[:, 1] = angle.cos(), angle.sin()
        adder.transformer.unembed.W_U[4], adder.transformer.unembed.W_U[5] = angle.cos(), angle.sin()
    assert not claims.certify(adder)["certified"]
    assert not claims.network_all_pairs(adder)["correct"]


def test_certificate_decision_is_strict_at_the_bound():
    """margin > 2 * error: the certificate's own bound, at and just below the margin."""
    adder = modular.build_adder(13)
    cert = claims.certify(adder)
    margin, error = cert["min_margin"], cert["error_bound"]
    assert margin > 2 * error
    assert not (margin > 2 * (margin / 2))                          # error at the bound: refused
    assert margin > 2 * math.nextafter(margin / 2, 0)               # just below: accepted


# --- the claims themselves ---------------------------------------------------------------------


def test_claims_pass():
    assert claims.check_trig_identity()[0]
    ok, evidence = claims.check_mod5()
    assert ok and evidence["cos_a_cos_b_clash"] and evidence["cos_of_sum_clash"]
    assert claims.check_adder_exact(range(2, 40))[0]


def test_symbolic_forward_for_two_frequencies():
    logit, target = claims.symbolic_forward(modular.build_adder(7, (2, 3)))
    assert claims.identity_holds(logit, target)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("p,freqs,error,word", [
    (1, None, ValueError, "p"), (0, None, ValueError, "p"), (2.5, None, TypeError, "p"),
    (True, None, TypeError, "p"), ("7", None, TypeError, "p"),
    (7, [], ValueError, "freqs"), (7, [0], ValueError, "freqs"), (7, [7], ValueError, "freqs"),
    (7, [1, 1], ValueError, "freqs"), (7, [1.5], TypeError, "freqs"), (7, "12", TypeError, "freqs"),
    (7, 3, TypeError, "freqs"), (6, [2, 4], ValueError, "freqs"), (9, [3, 6], ValueError, "gcd"),
])
def test_build_adder_rejects_bad_input(p, freqs, error, word):
    with pytest.raises(error, match=word):
        modular.build_adder(p, freqs)


def test_adder_rejects_bad_residues():
    adder = modular.build_adder(5)
    with pytest.raises(ValueError, match="x"):
        adder(torch.tensor([5]), torch.tensor([0]))
    with pytest.raises(ValueError, match="y"):
        adder(torch.tensor([0]), torch.tensor([-1]))
    with pytest.raises(TypeError, match="x"):
        adder(torch.tensor([0.0]), torch.tensor([0]))
    with pytest.raises(TypeError, match="y"):
        adder(torch.tensor([0]), [0])
    with pytest.raises(ValueError, match="same shape"):
        adder(torch.tensor([0, 1]), torch.tensor([0]))
    for fn in (modular.default_freqs, modular.dirichlet_margin, modular.margin_lower_bound):
        with pytest.raises(ValueError, match="p"):
            fn(1)


@pytest.mark.parametrize("argv", [
    ["inspect", "adder", "--p", "1"], ["inspect", "adder", "--p", "x"],
    ["inspect", "adder", "--p", "6", "--freqs", "2", "4"], ["inspect", "adder", "--bogus"],
    ["bench", "adder", "--p", "1"], ["bench", "adder", "--network-sample", "0"],
])
def test_cli_bad_input_is_one_line_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_inspect_and_claims_subprocess():
    result = subprocess.run([sys.executable, "-m", "verify", "inspect", "adder", "--p", "0"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and "p must be" in result.stderr
    assert cli.main(["inspect", "adder", "--p", "6"]) == 0
    assert cli.main(["--claim", "worked_example_3.mod5"]) == 0
