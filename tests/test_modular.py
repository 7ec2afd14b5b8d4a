"""The trig-identity adder: construction vs reference, the exact condition, the float64 certificate
(every guard and bound at its edge), each claim's literal and restated checks with broken inputs
that flip them, and bad input (claims modular.*, worked_example_3.mod5)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import sympy as sp
import torch
from hypothesis import example, given, note
from hypothesis import strategies as st

from constructions import modular, transformer
from tests import strategies
from verify import adder_certificate as ac
from verify import adder_pairs, cli, registry, rounding
from verify import trig_identities as ti
from verify.adder_inspect import inspect_adder
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
    bound = ac.rounding_bound(adder) + len(ks) * 1e-14              # + weight rounding (< 3e-16 |K|)
    note(f"max deviation {float((logits - ideal).abs().max())}, bound {bound}")
    assert float((logits - ideal).abs().max()) <= bound
    cert = ac.certify(adder)
    assert cert["certified"]
    # every admissible K has margin >= 2 sin^2(pi/p); K = {1} attains it
    assert cert["min_margin"] >= modular.margin_lower_bound(p) - 2 * cert["error_bound"]
    if ks == (1,):
        assert abs(cert["min_margin"] - modular.margin_lower_bound(p)) <= 2 * cert["error_bound"]


@pytest.mark.slow
def test_every_p_to_200_certified_with_the_dirichlet_margin():
    """The full range proofs/ states (the claim re-runs a sample of it)."""
    found = claims.adder_restated(subset_ps=(), certified_ps=range(2, 201), pizza_cases=[],
                                  record_ps=())
    assert found.holds, found.evidence["certified"]


def test_brute_force_and_network_agree_with_the_certificate():
    for p in (2, 3, 4, 7, 12, 30, 61):
        adder = modular.build_adder(p)
        cert = ac.certify(adder)
        brute = adder_pairs.brute_force(adder, chunk=97, cert=cert)
        assert cert["certified"] and brute["certified"]
        assert abs(brute["min_margin"] - cert["min_margin"]) <= 2 * (brute["error_bound"]
                                                                     + cert["error_bound"])
        assert adder_pairs.network_all_pairs(adder, chunk=50)["correct"]
    assert adder_pairs.brute_force(modular.build_unchecked(6, (2, 4)))["certified"] is False


def test_brute_force_decides_margin_above_twice_its_error_at_the_edge():
    """brute_force reuses a certificate's delta_R: choose it so that 2 x error == margin."""
    adder = modular.build_adder(11)
    cert = ac.certify(adder)
    base = adder_pairs.brute_force(adder, cert={**cert, "delta_R": 0.0})
    margin, other = base["min_margin"], base["error_bound"]          # error = delta_R + other
    delta = _extra_at_edge(margin, other)
    at = adder_pairs.brute_force(adder, cert={**cert, "delta_R": delta})
    assert 2 * at["error_bound"] == margin and at["certified"] is False
    below = adder_pairs.brute_force(adder, cert={**cert, "delta_R": math.nextafter(delta, 0)})
    assert below["certified"] is True


class _TieStub:
    """Logits 1 at the answer and at the answer + 1 (a tie the argmax breaks towards the lower
    index, i.e. right except at the answer p - 1, where the tie partner is 0)."""

    def __init__(self, p: int, wrong_at_top: bool):
        self.p, self.wrong_at_top = p, wrong_at_top

    def __call__(self, x, y):
        s = (x + y) % self.p
        logits = torch.nn.functional.one_hot(s, self.p).to(torch.float64)
        partner = s + 1
        keep = partner < self.p if not self.wrong_at_top else torch.ones_like(s, dtype=torch.bool)
        logits[keep.nonzero().flatten(), partner[keep] % self.p] = 1.0
        return logits


def test_network_all_pairs_needs_no_wrong_argmax_and_a_positive_margin():
    tie_only = adder_pairs.network_all_pairs(_TieStub(5, wrong_at_top=False))
    assert tie_only["wrong"] == 0 and tie_only["min_margin"] == 0 and not tie_only["correct"]
    wrong = adder_pairs.network_all_pairs(_TieStub(5, wrong_at_top=True))
    assert wrong["wrong"] > 0 and not wrong["correct"]


def test_dirichlet_margin_closed_form_values_and_proof_steps():
    assert modular.dirichlet_margin(2) == 2 and modular.dirichlet_margin(3) == 1.5
    assert modular.dirichlet_margin(4) == 1 and modular.dirichlet_margin(1009) == 504.5
    assert modular.dirichlet_margin(100) == 49
    assert modular.margin_lower_bound(5) == pytest.approx((5 - math.sqrt(5)) / 4, rel=1e-15)
    assert all(ti.table_holds(ti.dirichlet_table()).values())
    assert all(ti.dirichlet_closed_form_holds(n) for n in range(1, 6))
    assert all(ti.dirichlet_values_exact(p) for p in range(2, 9))


def test_identity_table_and_a_false_row():
    assert all(ti.table_holds(ti.identity_table()).values())
    wrong = [("cos_sum_with_plus", sp.cos(ti.A + ti.B),
              sp.cos(ti.A) * sp.cos(ti.B) + sp.sin(ti.A) * sp.sin(ti.B))]
    assert ti.table_holds(wrong) == {"cos_sum_with_plus": False}


def test_parameters_are_the_transformer_weights_with_transformerlens_names():
    adder = modular.build_adder(7)
    names = [n for n, _ in adder.named_parameters()]
    assert names == list(adder.transformer.cfg.parameter_shapes())
    assert list(adder.state_dict()) == names
    tokens = adder.tokens(torch.tensor([3]), torch.tensor([6]))
    _, cache = adder.transformer.run_with_cache(tokens)
    assert torch.equal(cache["blocks.0.attn.hook_pattern"][0, 0, 1],
                       torch.tensor([0.5, 0.5], dtype=torch.float64))


# --- the softmax: bounded, not assumed exact ----------------------------------------------------


@pytest.mark.parametrize("p", [2, 5, 97, 200])
def test_softmax_on_the_shapes_run_is_within_its_bound(p):
    """Every pair's pattern, batched as the certificate's networks run, is within alpha of 1/2."""
    adder = modular.build_adder(p)
    x, y = next(rounding.pair_chunks(p))
    _, cache = adder.transformer.run_with_cache(adder.tokens(x, y))
    pattern = cache["blocks.0.attn.hook_pattern"][:, 0, 1]           # [pairs, 2]
    assert float((pattern - 0.5).abs().max()) <= rounding.equal_softmax_error(2)


def test_softmax_error_enters_the_rounding_bound(monkeypatch):
    adder = modular.build_adder(11)
    base = ac.rounding_bound(adder)
    monkeypatch.setattr(ac, "equal_softmax_error", lambda n: 1e-3)
    assert ac.rounding_bound(adder) > 100 * base                  # alpha (M + e) terms dominate
    monkeypatch.undo()
    assert ac.rounding_bound(adder) == base
    assert rounding.equal_softmax_error(2) > 0
    assert rounding.equal_softmax_error(2, 0.0) < rounding.equal_softmax_error(2)
    assert rounding.equal_softmax_error(3) > 0
    for bad in (0, 1.5, True):
        with pytest.raises((ValueError, TypeError), match="n must be"):
            rounding.equal_softmax_error(bad)
    with pytest.raises(ValueError, match="exp_rel_err"):
        rounding.equal_softmax_error(2, 0.5)
    with pytest.raises(ValueError, match="exp_rel_err"):
        rounding.equal_softmax_error(2, -1e-20)


def test_reference_table_is_within_ref_err_of_mpmath():
    import mpmath
    for n in (1, 2, 7, 97, 1000):
        cos, sin = rounding.reference_table(n)
        with mpmath.workdps(40):
            for j in range(0, n, max(1, n // 37)):
                assert abs(float(cos[j]) - mpmath.cos(2 * mpmath.pi * j / n)) <= rounding.REF_ERR
                assert abs(float(sin[j]) - mpmath.sin(2 * mpmath.pi * j / n)) <= rounding.REF_ERR
    for bad in (0, rounding.MAX_TABLE, 2.0):
        with pytest.raises(ValueError, match="n must be"):
            rounding.reference_table(bad)


# --- the exact condition ----------------------------------------------------------------------


def test_condition_holds_for_every_frequency_set_and_wrong_conditions_fail():
    ok, evidence = adder_pairs.condition_all_subsets(range(2, 15))
    assert ok and evidence["frequency_sets"] == 16369
    # Demo 2's reading ("prime modulus") and "K contains a unit" are not the condition
    ok, evidence = adder_pairs.condition_all_subsets(range(2, 9),
                                                     lambda p, K: all(p % q for q in range(2, p)))
    assert not ok and evidence["counterexamples"][0] == (4, (1,))
    ok, evidence = adder_pairs.condition_all_subsets(
        range(2, 9), lambda p, K: any(math.gcd(p, k) == 1 for k in K))
    assert not ok and (6, (2, 3)) in evidence["counterexamples"]


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
    assert adder_pairs.ties_exactly(p, ks)
    assert not ac.certify(broken)["certified"]


# --- the certificate: every guard, every bound at its edge ------------------------------------


def _broken(p: int, name: str, index: tuple[int, ...], delta: float):
    adder = modular.build_adder(p)
    with torch.no_grad():
        dict(adder.named_parameters())[name][index] += delta
    return adder


@pytest.mark.parametrize("name,index,reason", [
    ("blocks.0.attn.W_V", (0, 0, 0), "W_V differs"),
    ("blocks.0.attn.W_O", (0, 0, 0), "W_O differs"),
    ("blocks.0.mlp.W_in", (0, 0), "W_in differs"),       # a new nonzero entry (count)
    ("blocks.0.mlp.W_in", (6, 0), "W_in differs"),       # a dyadic value changed (S_cos -> n0)
    ("blocks.0.mlp.W_out", (0, 8), "W_out differs"),
    ("blocks.0.attn.W_Q", (0, 0, 0), "W_Q is not zero"),
    ("blocks.0.attn.b_K", (0, 0), "b_K is not zero"),
    ("blocks.0.mlp.b_in", (3,), "b_in is not zero"),
    ("pos_embed.W_pos", (1, 0), "W_pos is not zero"),
    ("embed.W_E", (0, 6), "W_E writes outside slot B"),         # column 2m: first past slot B
    ("unembed.W_U", (0, 0), "W_U reads slots B or S"),
    ("unembed.W_U", (11, 0), "W_U reads slots B or S"),         # row 4m - 1: last of slot S
])
def test_each_structure_guard_refuses(name, index, reason):
    adder = _broken(7, name, index, 0.25)                          # p = 7: m = 3, d_model 18
    cert = ac.certify(adder)
    assert not cert["certified"] and reason in cert["reason"]


@pytest.mark.parametrize("change", [
    {"act_fn": "relu"}, {"attention": "hard"}, {"attn_scale": 2.0}, {"n_ctx": 3},
    {"dtype": torch.float32}, {"d_mlp": 25}, {"n_heads": 2, "d_head": 3},
])
def test_a_changed_config_is_never_certified(change):
    """certify never runs the network: the config comparison is its guard on the architecture."""
    good = modular.build_adder(7)
    cfg = transformer.Config(**{**good.transformer.cfg.__dict__, **change})
    model = transformer.Transformer(cfg)
    with torch.no_grad():
        for name, w in model.named_parameters():
            src = dict(good.named_parameters())[name]
            if w.shape == src.shape:
                w.copy_(src.to(w.dtype))
    cert = ac.certify(modular.ModularAdder(7, good.freqs, model))
    assert not cert["certified"] and cert["reason"].startswith("config")


def _extra_at_edge(margin: float, error: float) -> float:
    """extra >= 0 with fl(error + extra) == margin / 2 exactly (so 2 (error + extra) == margin)."""
    extra = margin / 2 - error
    for _ in range(8):
        total = error + extra
        if total == margin / 2:
            return extra
        extra = math.nextafter(extra, math.inf if total < margin / 2 else 0.0)
    raise AssertionError("no float extra hits the edge")


@pytest.mark.parametrize("p", [5, 13, 96])
def test_certify_decides_margin_above_twice_the_error_at_the_edge(p):
    """Through certify itself: margin == 2 x (error + extra) is refused, one ulp less accepted."""
    adder = modular.build_adder(p)
    cert = ac.certify(adder)
    margin, error = cert["min_margin"], cert["error_bound"]
    extra = _extra_at_edge(margin, error)
    assert 2 * (error + extra) == margin
    assert ac.certify(adder, extra_error=extra)["certified"] is False
    assert ac.certify(adder, extra_error=math.nextafter(extra, 0.0))["certified"] is True


@pytest.mark.parametrize("bad,error", [(-1e-9, ValueError), (math.inf, ValueError),
                                       (math.nan, ValueError), (True, TypeError),
                                       ("0", TypeError)])
def test_extra_error_is_validated(bad, error):
    with pytest.raises(error, match="extra_error"):
        ac.certify(modular.build_adder(5), extra_error=bad)


def test_embedding_errors_are_bounded_not_ignored():
    tiny = _broken(11, "embed.W_E", (3, 0), 1e-12)                  # still certified, larger eps_E
    cert = ac.certify(tiny)
    assert cert["certified"] and cert["eps_E"] >= 1e-12
    assert not ac.certify(_broken(11, "embed.W_E", (3, 0), 0.7))["certified"]
    wide = _broken(11, "unembed.W_U", (20, 2), 3.0)                 # rho_U grows with W_U
    assert ac.unembed_radius(wide) > 3


def test_wrong_modulus_fails():
    """Weights of the mod-8 adder relabelled as a mod-7 adder (the embedding's angles are 2 pi x/8)."""
    adder = modular.build_adder(7, (1,))
    with torch.no_grad():
        angle = torch.arange(7, dtype=torch.float64) * 2 * math.pi / 8
        adder.transformer.embed.W_E[:, 0], adder.transformer.embed.W_E[:, 1] = angle.cos(), angle.sin()
        adder.transformer.unembed.W_U[4], adder.transformer.unembed.W_U[5] = angle.cos(), angle.sin()
    assert not ac.certify(adder)["certified"]
    assert not adder_pairs.network_all_pairs(adder)["correct"]


# --- the claims: literal and restated, and what flips them --------------------------------------

def _verdict(literal, restated) -> str:
    return registry.derive_verdict(literal.holds, restated.holds)


def test_trig_identity_literal_fails_on_the_cosine_and_flips_at_p2():
    lit, res = claims.trig_literal(), claims.trig_restated()
    assert not lit.holds and lit.evidence["clash"] == [[0, 1], [0, 4]]
    assert res.holds and _verdict(lit, res) == "corrected"
    # p = 2: cos(pi s) separates s = 0, 1, so the section's statement holds there
    assert claims.trig_literal(p=2).holds and _verdict(claims.trig_literal(p=2), res) == "confirmed"
    # handing the literal check both identities makes it hold too
    assert claims.trig_literal(features=ti.angle_addition_features).holds


def test_trig_identity_restated_each_condition_fails_alone():
    bad_row = [("wrong", sp.sin(ti.A + ti.B), sp.sin(ti.A) * sp.cos(ti.B))]
    found = claims.trig_restated(identities=bad_row)
    assert not found.holds and found.evidence["failed"] == ["wrong"]
    adder = modular.build_adder(5)
    with torch.no_grad():
        adder.transformer.blocks[0].mlp.W_out[0, 8] = 0.5          # 1/4 -> 1/2 on x+^2
    found = claims.trig_restated(adder=adder)
    assert not found.holds and not found.evidence["network_forward_symbolic"]
    found = claims.trig_restated(features=ti.cosine_identity_features)
    assert not found.holds and not found.evidence["cos_and_sin_determine_sum"]
    assert not claims.trig_literal().holds and _verdict(claims.trig_literal(), found) == "refuted"


def test_symbolic_forward_for_two_frequencies():
    logit, target = ti.symbolic_forward(modular.build_adder(7, (2, 3)))
    assert ti.identity_holds(logit, target)


def test_adder_literal_finds_the_shared_factor_and_flips_for_primes():
    lit = claims.adder_literal()
    assert not lit.holds
    assert lit.evidence["counterexample"]["p"] == 4 and lit.evidence["counterexample"]["K"] == [2]
    small = dict(subset_ps=range(2, 8), certified_ps=range(2, 12), pizza_cases=[(9, 4, None, True)],
                 record={"d": 4, "certified_every_p_from_to": [[2, 17]]}, record_ps=(11, 18))
    res = claims.adder_restated(**small)
    assert res.holds and _verdict(lit, res) == "corrected"
    # prime moduli only (Demo 2's reading): every few-frequency set works
    primes = claims.adder_literal(ps=(2, 3, 5, 7), few=2)
    assert primes.holds and _verdict(primes, res) == "confirmed"
    # "a few" = 1 frequency, p = 4: K = {2} is still a counterexample
    assert not claims.adder_literal(ps=(4,), few=1).holds


def test_adder_literal_raises_when_a_failure_is_not_proved():
    def broken(p, ks):
        adder = modular.build_unchecked(p, ks)
        with torch.no_grad():
            adder.transformer.blocks[0].mlp.W_in[2 * len(ks), 0] = 3.0       # S_cos -> n0: 1 -> 3
        return adder
    with pytest.raises(RuntimeError, match="no tie proves"):
        claims.adder_literal(ps=(3,), build=broken)


def test_adder_restated_each_condition_fails_alone():
    small = dict(subset_ps=range(2, 8), certified_ps=range(2, 12), pizza_cases=[(9, 4, None, True)],
                 record={"d": 4, "certified_every_p_from_to": [[2, 17]]}, record_ps=(11, 18))
    assert claims.adder_restated(**small).holds
    found = claims.adder_restated(**{**small, "condition": lambda p, K: p in (2, 3, 5, 7)})
    assert not found.holds and found.evidence["all_frequency_sets"]["counterexamples"]

    def broken(p):
        return modular.build_unchecked(p, (p // 2,)) if p == 6 else modular.build_adder(p)
    found = claims.adder_restated(**{**small, "build": broken})
    assert not found.holds and found.evidence["certified"]["failures"][0][0] == 6
    found = claims.adder_restated(**{**small, "expected_margin": lambda p: p / 2 if p > 2 else 2.0})
    assert not found.holds and found.evidence["certified"]["failures"][0][0] == 4

    def bad_pizza(p, d, hidden):
        from constructions import pizza
        return pizza.build_unchecked(p, d, hidden, rotation=1)                      # odd p rotated
    found = claims.adder_restated(**{**small, "build_pizza": bad_pizza})
    assert not found.holds and found.evidence["demo_2_pizza"]["failures"]
    found = claims.adder_restated(**{**small, "record": {"d": 4, "certified_every_p_from_to":
                                                         [[2, 10]]}})
    assert not found.holds and found.evidence["pizza_record"]["disagreements"][0]["p"] == 11


def test_mod5_literal_fails_on_one_product_and_flips_with_both_identities():
    lit, res = claims.mod5_literal(), claims.mod5_restated()
    assert not lit.holds and lit.evidence["clash"]
    assert res.holds and _verdict(lit, res) == "corrected"
    assert res.evidence["exact_margin"] == str((5 - sp.sqrt(5)) / 4)
    assert abs(res.evidence["certified_margin"] - (5 - math.sqrt(5)) / 4) <= 2 * res.evidence[
        "error_bound"]
    both = claims.mod5_literal(features=ti.angle_addition_features)
    assert both.holds and _verdict(both, res) == "confirmed"


def test_mod5_restated_each_condition_fails_alone():
    found = claims.mod5_restated(stated_margin=(5 - sp.sqrt(5)) / 4 + sp.Rational(1, 10**30))
    assert not found.holds and not found.evidence["margin_equal"] and found.evidence["certified"]
    found = claims.mod5_restated(adder=modular.build_adder(5))            # K = {1, 2}: margin 5/2
    assert not found.holds and found.evidence["exact_margin"] == "5/2"
    broken = modular.build_adder(5, (1,))
    with torch.no_grad():
        broken.transformer.blocks[0].mlp.W_in[2, 0] = 2.0
    found = claims.mod5_restated(adder=broken)
    assert not found.holds and found.evidence["margin_equal"] and not found.evidence["certified"]


def test_sum_clash_validates_p():
    for bad, error in ((1, ValueError), (62, ValueError), (5.0, TypeError)):
        with pytest.raises(error, match="p must"):
            ti.sum_clash(bad, ti.product_feature)


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


@pytest.mark.parametrize("freqs", [[0], [7], [-1], [1, 8]])
def test_builders_reject_frequency_0_or_p(freqs):
    with pytest.raises(ValueError, match="freqs"):
        modular.build_unchecked(7, freqs)
    with pytest.raises(ValueError, match="freqs"):
        modular.build_adder(7, freqs)


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


def test_inspect_adder_prints_the_certificate(capsys):
    assert inspect_adder(["--p", "6"]) == 0
    assert "certificate: min margin" in capsys.readouterr().out


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
    assert cli.main(["--claim", "worked_example_3.mod5"]) == 0


def test_claim_check_arguments_are_validated():
    with pytest.raises(ValueError, match="few must be >= 1"):
        claims.adder_literal(few=0)
    with pytest.raises(ValueError, match="ps entry must be >= 2"):
        claims.adder_literal(ps=(1,))
    with pytest.raises(ValueError, match="ps entry must be <= 20"):
        adder_pairs.condition_all_subsets((21,))
    with pytest.raises(TypeError, match="stated_margin must be an exact real"):
        claims.mod5_restated(stated_margin=0.691)
    with pytest.raises(TypeError, match="stated_margin must be an exact real"):
        claims.mod5_restated(stated_margin=sp.I)
    with pytest.raises(ValueError, match="freqs"):
        claims.exact_margin(5, (5,))
    with pytest.raises(ValueError, match="p must be >= 2"):
        claims.exact_margin(1, (1,))


def test_rounding_bounds_are_the_stated_formulas():
    """Each bound is the formula its docstring and proofs/ state, recomputed in exact rationals."""
    from fractions import Fraction as Fr

    u, ref = Fr(1, 2**53), Fr(1, 2**52)

    def gam(n):
        return n * u / (1 - n * u)

    assert float(2 * gam(2) * (1 + ref) ** 2 + 4 * ref * (1 + ref)) == pytest.approx(
        rounding.product_reference_error(), rel=1e-12, abs=0)
    zero = torch.zeros(3, dtype=torch.float64)
    assert rounding.pair_error(zero, zero, zero, zero) == 2 * rounding.REF_ERR
    assert rounding.pair_error(zero, zero, zero, zero, ref_err=1e-3) == 2e-3
    for n, e in ((2, Fr(0)), (2, Fr(1, 2**51)), (3, Fr(1, 2**51))):
        tau = 2 * u + u * u
        upper = (1 + e) * (1 + tau) / ((1 - e) * (1 - gam(n - 1))) - 1
        lower = 1 - (1 - e) * (1 - tau) / ((1 + e) * (1 + gam(n - 1)))
        want = float(max(upper, lower) / n) * rounding.SLACK
        assert rounding.equal_softmax_error(n, float(e)) == pytest.approx(want, rel=1e-12, abs=0)
    assert rounding.equal_softmax_error(1) >= 0                      # n = 1: at the bound, accepted
    assert rounding.gamma(3) == pytest.approx(float(gam(3)), rel=1e-15, abs=0)
    assert rounding.equal_softmax_error(2**52) > 0
    with pytest.raises(ValueError,
                       match=r"^n must be at most 2\^52 \(gamma_\(n-1\) < 1\), got 4503599627370497$"):
        rounding.equal_softmax_error(2**52 + 1)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 97, 2**20, 2**52])
def test_equal_softmax_upper_deviation_dominates_the_lower(n):
    """The lemma behind returning (U - 1)/n alone: U - 1 >= 1 - L for every n and exp error e in
    [0, 1/2), in exact rationals (n = 1, 2 are the cases where tau > gamma_(n-1))."""
    from fractions import Fraction as Fr

    u = Fr(1, 2**53)
    tau, g = 2 * u + u * u, (n - 1) * u / (1 - (n - 1) * u)
    for e in (Fr(0), Fr(1, 2**51), Fr(1, 1000), Fr(1, 2) - Fr(1, 2**40)):
        upper = (1 + e) * (1 + tau) / ((1 - e) * (1 - g))
        lower = (1 - e) * (1 - tau) / ((1 + e) * (1 + g))
        assert upper * lower == (1 - tau * tau) / (1 - g * g) and upper >= 1 + tau
        assert upper - 1 >= 1 - lower
        assert rounding.equal_softmax_error(n, float(e)) >= float((1 - lower) / n)


def test_feature_maps_are_the_stated_expressions():
    x = sp.Symbol("x")
    p = 5
    w = 2 * sp.pi / p
    for a, b in ((0, 0), (1, 2), (3, 4), (4, 4)):
        want = {"cos": sp.cos(w * (a + b)), "sin": sp.sin(w * (a + b))}
        cos_only = ti.cosine_identity_features(a, b, p)
        both = ti.angle_addition_features(a, b, p)
        prod = ti.product_feature(a, b, p)
        assert sp.minimal_polynomial(cos_only[0] - want["cos"], x) == x
        assert sp.minimal_polynomial(both[0] - want["cos"], x) == x
        assert sp.minimal_polynomial(both[1] - want["sin"], x) == x
        assert sp.minimal_polynomial(prod[0] - sp.cos(w * a) * sp.cos(w * b), x) == x


def test_adder_restated_margin_tolerance_edges_and_record_run_ends():
    adder = modular.build_adder(7)
    cert = ac.certify(adder)
    margin, err = cert["min_margin"], cert["error_bound"]
    small = dict(subset_ps=(), certified_ps=(7,), pizza_cases=[(9, 4, None, True),
                                                               (5, 4, "min", True)],
                 record={"d": 4, "certified_every_p_from_to": [[2, 17]]}, record_ps=(2, 17, 18))
    inside = claims.adder_restated(**small, expected_margin=lambda p: margin + 1.999 * err)
    assert inside.holds and inside.evidence["demo_2_pizza"]["demo"]["p"] == 9
    outside = claims.adder_restated(**small, expected_margin=lambda p: margin + 2.001 * err)
    assert not outside.holds and outside.evidence["certified"]["failures"][0][0] == 7
