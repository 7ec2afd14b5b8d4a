"""The induction circuit against the reference, exactly (hard) and above beta* (softmax)."""

from __future__ import annotations

import itertools
import math

import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from constructions import exact, induction
from tests import strategies as S
from verify import beta_threshold
from verify import induction_certificate as cert
from verify import sequences as seqs

CAT_V, CAT_IDS = len(seqs.tokenize(seqs.SENTENCE)[0]), seqs.tokenize(seqs.SENTENCE)[1]
CAT = (CAT_V, len(CAT_IDS) + 1, torch.tensor([[CAT_V, *CAT_IDS]]))
DEMO = (5, 9, torch.tensor([[5, *seqs.DEMO_SEQUENCE]]))


# --- reference ---------------------------------------------------------------------------

def test_reference_by_hand() -> None:
    tokens = torch.tensor([[3, 0, 1, 0, 2, 0, 0]])
    # t=3 (0): latest earlier 0 at 1 -> 1; t=5 (0): latest at 3 -> 2; t=6 (0): latest at 5 -> 0
    assert induction.induction_targets(tokens, 3).tolist() == [[3, 3, 3, 1, 3, 2, 0]]


@given(S.induction_cases())
def test_reference_matches_a_loop(case) -> None:
    V, _, tokens = case
    got = induction.induction_targets(tokens, V)
    for b, row in enumerate(tokens.tolist()):
        for t, x in enumerate(row):
            earlier = [j for j in range(t) if row[j] == x]
            assert got[b, t] == (row[earlier[-1] + 1] if earlier else V)


# --- construction vs reference -------------------------------------------------------------

@given(S.induction_cases(), st.sampled_from(["hard", "softmax"]))
@example(CAT, "softmax")
@example(CAT, "hard")
@example(DEMO, "softmax")
@example(DEMO, "hard")
def test_model_matches_reference(case, attention) -> None:
    V, N, tokens = case
    model = induction.build_induction_model(V, N, attention)
    logits = model(tokens)
    target = induction.induction_targets(tokens, model.bos)
    assert logits.shape == (*tokens.shape, V + 1)
    assert torch.equal(logits.argmax(-1), target)
    if attention == "hard":  # exact: the one-hot of the target, and integer arithmetic
        assert torch.equal(logits, F.one_hot(target, V + 1).to(logits.dtype))
        assert cert.integer_certificate(model.run_with_cache(tokens)[1])


@given(S.induction_cases(min_vocab=3, kind="first_occurrence_trap", max_ctx=14))
def test_most_recent_not_first_occurrence(case) -> None:
    V, N, tokens = case
    model = induction.build_induction_model(V, N, "softmax")
    assert torch.equal(model(tokens).argmax(-1), induction.induction_targets(tokens, V))


@given(S.induction_cases(max_ctx=16))
def test_softmax_within_proved_bounds(case) -> None:
    V, N, tokens = case
    report = cert.softmax_report(induction.build_induction_model(V, N, "softmax"), tokens)
    assert report["correct"] and report["mass_1_within"] and report["mass_2_within"]
    assert report["margin_within"]


def test_transformer_lens_runs_the_same_weights() -> None:
    pytest.importorskip("transformer_lens")
    from verify.benchmarks.induction import hooked_transformer

    model = induction.build_induction_model(5, 12, "softmax")
    tokens = seqs.random_sequences(5, 12, 20)
    assert torch.allclose(hooked_transformer(model)(tokens), model(tokens), atol=1e-12, rtol=0)


# --- the temperature bound -----------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3, 8, 64, 512, 4096, 10**6])
def test_beta_star_formula_at_and_below(n: int) -> None:
    star = induction.beta_star(n)
    assert star == pytest.approx(math.log(8 * n), rel=1e-15)
    at = induction.mass_bounds(star, n)
    assert at["certified"] and at["eta"] <= 0.5001          # the proof's numbers at beta*
    assert at["delta_2"] < 0.27 and at["margin"] > 0.46
    below = induction.mass_bounds(star * (1 - 1e-9), n)
    assert not below["certified"] and below["delta_2"] >= at["delta_2"]
    assert induction.default_beta(n) == star


@given(st.integers(2, 5000), st.floats(0.0, 30.0))
@example(2, 0.0)
@example(3, 0.0)                                           # the largest delta_2 at beta*
def test_bounds_decrease_beyond_beta_star(n: int, extra: float) -> None:
    """Every bound improves as beta grows past beta*, so beta >= beta* keeps delta_2 < 1/2."""
    star = induction.beta_star(n)
    lo, hi = induction.mass_bounds(star + extra, n), induction.mass_bounds(star + extra + 0.5, n)
    assert hi["delta_1"] <= lo["delta_1"] and hi["eta"] <= lo["eta"]
    assert hi["delta_2"] <= lo["delta_2"] < 0.27


def test_bounds_at_small_beta_and_large_n_stay_finite() -> None:
    b = induction.mass_bounds(5.0, 4096)          # eta is 110: the exponent would overflow
    assert b["delta_2"] == 1.0 and b["margin"] == -1.0 and not b["certified"]
    assert induction.mass_bounds(0.01, 3)["delta_1"] == 1.0
    assert induction.mass_bounds(2.0, 1) == {"delta_1": 0.0, "eta": 0.0, "delta_2": 0.0,
                                             "margin": 1.0, "certified": True}


def test_beta_star_ignores_vocab_and_n1() -> None:
    assert induction.beta_star(7, 1) == induction.beta_star(7, 50)
    assert induction.beta_star(1) == 0.0 and induction.default_beta(1) == 1.0
    assert induction.default_beta(9, "hard") == induction.HARD_BETA


@pytest.mark.parametrize("n", [4, 10, 24])
def test_model_at_beta_star_on_adversarial(n: int) -> None:
    model = induction.build_induction_model(3, n, "softmax", beta=induction.beta_star(n))
    tokens = torch.cat([seqs.adversarial_sequences(3, n, n_random=30),
                        seqs.random_sequences(3, n, 50)])
    report = cert.softmax_report(model, tokens)
    assert report["correct"] and report["mass_1_within"] and report["mass_2_within"]
    assert report["margin_within"]


# --- exact arithmetic ----------------------------------------------------------------------

def test_every_sequence_exact_in_sympy() -> None:
    """Every sequence, vocab <= 4, length <= 6, through the SymPy mirror: logits == one-hot."""
    total = 0
    for V in (1, 2, 3, 4):
        model = induction.build_induction_model(V, 6, "hard")
        weights = exact.exact_weights(model)
        for length in range(1, 7):
            for body in itertools.product(range(V), repeat=length - 1):
                seq = [V, *body]
                target = induction.induction_targets(torch.tensor([seq]), V)[0].tolist()
                want = sp.Matrix([[int(c == t) for c in range(V + 1)] for t in target])
                assert exact.exact_forward(model.cfg, weights, seq) == want, seq
                total += 1
    assert total == sum(V ** k for V in (1, 2, 3, 4) for k in range(6))


def test_check_exact_torch_every_sequence() -> None:
    models = [induction.build_induction_model(V, 6, "hard") for V in (1, 2, 3, 4)]
    result = cert.check_exact(models, sympy_sample=10, max_len=6)
    assert result["exact_all_sequences"] and result["sympy_exact"]
    assert result["sequences"] == sum(V ** k for V in (1, 2, 3, 4) for k in range(6))


# --- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, word", [
    ({"vocab_size": 0, "n_ctx": 4}, "vocab_size"),
    ({"vocab_size": 3, "n_ctx": 0}, "n_ctx"),
    ({"vocab_size": 3, "n_ctx": 4, "beta": 0.0}, "beta"),
    ({"vocab_size": 3, "n_ctx": 4, "beta": -1.0}, "beta"),
    ({"vocab_size": 3, "n_ctx": 4, "beta": float("inf")}, "beta"),
    ({"vocab_size": 3, "n_ctx": 4, "attention": "linear"}, "attention"),
])
def test_builder_rejects_bad_arguments(kwargs, word) -> None:
    with pytest.raises(ValueError, match=word):
        induction.build_induction_model(**kwargs)


@pytest.mark.parametrize("tokens, word", [
    ([[3, 0, 5]], "tokens"),          # outside the vocabulary
    ([[0, 1, 2]], "position 0"),      # no BOS
    ([[3, 1, 3]], "BOS"),             # BOS after position 0
    ([[3, 0, 1, 2, 0, 1]], "n_ctx"),  # longer than n_ctx = 5
    ([[3, -1]], "tokens"),
])
def test_model_rejects_bad_tokens(tokens, word) -> None:
    model = induction.build_induction_model(3, 5)
    with pytest.raises(ValueError, match=word):
        model(torch.tensor(tokens))
    with pytest.raises(ValueError, match=word):
        model.run_with_cache(torch.tensor(tokens))


def test_other_functions_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="n_ctx"):
        induction.beta_star(0)
    with pytest.raises(ValueError, match="vocab_size"):
        induction.beta_star(4, 0)
    with pytest.raises(ValueError, match="beta"):
        induction.mass_bounds(0.0, 4)
    with pytest.raises(TypeError, match="tokens"):
        induction.induction_targets(torch.zeros(2, 3), 1)
    with pytest.raises(TypeError, match="tokens"):
        induction.induction_targets([[1, 2]], 1)
    with pytest.raises(ValueError, match="bos"):
        induction.induction_targets(torch.zeros(1, 3, dtype=torch.long), -1)
    with pytest.raises(TypeError, match="tokens"):
        induction.build_induction_model(3, 4)(torch.tensor([[3.0, 1.0]]))


@given(S.lower_bound_cases())
@example((16, math.log(29)))          # at the bound, N = 16
@example((16, 1e-3))                  # far below 1 (the case added for issue 9)
@example((3, math.log(3)))            # the smallest N, at its bound
def test_lower_bound_family_fails_for_every_beta_up_to_the_bound(case) -> None:
    """[BOS, b, ..., b, a] is wrong at T = n - 1 for every 0 < beta <= ln(2n - 3) (proofs/)."""
    n, beta = case
    tokens = beta_threshold.lower_bound_family(n)
    model = induction.build_induction_model(2, n, "softmax", beta=beta)
    assert model(tokens)[0, -1].argmax() != 2


@pytest.mark.parametrize("n", [3, 8, 16, 40])
def test_lower_bound_family_right_at_beta_star(n: int) -> None:
    tokens = beta_threshold.lower_bound_family(n)
    right = induction.build_induction_model(2, n, "softmax")
    assert right(tokens)[0, -1].argmax() == 2


# --- the integer certificate at its edges --------------------------------------------------

def test_integer_certificate_edges() -> None:
    limit = cert.FLOAT_EXACT_LIMIT
    ok = {"blocks.0.hook_resid_pre": torch.tensor([limit - 1, -(limit - 1)], dtype=torch.float64),
          "blocks.0.attn.hook_pattern": torch.tensor([[1.0, 0.0]], dtype=torch.float64)}
    assert cert.integer_certificate(ok)
    assert not cert.integer_certificate({**ok, "x": torch.tensor([limit], dtype=torch.float64)})
    assert not cert.integer_certificate({**ok, "x": torch.tensor([-limit], dtype=torch.float64)})
    assert not cert.integer_certificate({**ok, "x": torch.tensor([0.5], dtype=torch.float64)})
    half = {"blocks.1.attn.hook_pattern": torch.tensor([[0.5, 0.5]], dtype=torch.float64)}
    assert not cert.integer_certificate({**ok, **half})
    two = {"blocks.1.attn.hook_pattern": torch.tensor([[2.0, -1.0]], dtype=torch.float64)}
    assert not cert.integer_certificate({**ok, **two})
    masked = {"blocks.0.attn.hook_attn_scores": torch.tensor([3.0, float("-inf")])}
    assert cert.integer_certificate({**ok, **masked})      # -inf (the causal mask) is skipped


def test_rounding_estimate_is_far_below_the_margin() -> None:
    for n in (2, 64, 512):
        est = cert.rounding_estimate(induction.beta_star(n), n)
        assert est["estimated_logit_error"] < 1e-6 < est["proved_margin_floor"]
    with pytest.raises(ValueError, match="beta"):
        cert.rounding_estimate(0.0, 8)
    with pytest.raises(ValueError, match="n_ctx"):
        cert.rounding_estimate(1.0, 1)


# --- the section's variants and the sequence helpers ----------------------------------------

def test_section_variants() -> None:
    tokens = seqs.random_sequences(4, 12, 50)
    target = induction.induction_targets(tokens, 4)
    identity = induction.build_section_variant(4, 12, "identity_ov")
    _, cache = identity.run_with_cache(tokens)
    tok = cache["blocks.0.hook_resid_post"][..., identity.layout.tok]
    # the token coordinates hold e(x_i) + e(x_{i-1}): a sum, symmetric in the pair
    assert torch.equal(tok.sum(-1), torch.full(tok.shape[:2], 2.0, dtype=tok.dtype))
    assert not torch.equal(identity(tokens).argmax(-1), target)
    match_only = induction.build_section_variant(3, 6, "match_only")
    assert not torch.equal(match_only(seqs.all_sequences(3, 6)).argmax(-1),
                           induction.induction_targets(seqs.all_sequences(3, 6), 3))
    with pytest.raises(ValueError, match="variant"):
        induction.build_section_variant(3, 6, "ours")


def test_sequence_helpers_reject_bad_input() -> None:
    for call, word in ((lambda: seqs.all_sequences(0, 3), "vocab_size"),
                       (lambda: seqs.all_sequences(2, 0), "length"),
                       (lambda: seqs.random_sequences(2, 4, 0), "count"),
                       (lambda: seqs.adversarial_sequences(2, 1), "n"),
                       (lambda: seqs.previous_index(0), "n"),
                       (lambda: seqs.tokenize("  "), "text")):
        with pytest.raises(ValueError, match=word):
            call()
    with pytest.raises(TypeError, match="tokens"):
        seqs.induction_key(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="max_len"):
        cert.check_exact([], sympy_sample=0, max_len=0)


def test_induction_key_matches_the_reference() -> None:
    tokens = seqs.all_sequences(3, 6)
    key = seqs.induction_key(tokens)
    assert torch.equal(tokens.gather(1, key).where(key > 0, 3), induction.induction_targets(tokens, 3))
