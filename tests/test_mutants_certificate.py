"""The mathematics behind the induction checks, pinned so that a changed constant, comparison or
slice fails a test (mutation testing, issue 13): the sequences (verify/sequences.py), the integer
certificate, exact runs and softmax report (verify/induction_certificate.py), and the threshold
search (verify/beta_threshold.py). Sizes are tiny: every test here runs in well under a second
or two."""

from __future__ import annotations

import json
import math

import pytest
import torch

from constructions import induction
from constructions.transformer import Transformer
from verify import beta_threshold as bt
from verify import induction_certificate as cert
from verify import sequences as seqs

# --- verify/sequences.py ------------------------------------------------------------------


def test_all_sequences_enumerates_in_order() -> None:
    got = seqs.all_sequences(2, 3)
    assert got.dtype == torch.long
    assert got.tolist() == [[2, 0, 0], [2, 0, 1], [2, 1, 0], [2, 1, 1]]
    assert seqs.all_sequences(3, 1).tolist() == [[3]]           # the shortest: BOS alone
    assert seqs.all_sequences(1, 3).tolist() == [[1, 0, 0]]
    with pytest.raises(ValueError, match=r"^vocab_size must be >= 1, got 0$"):
        seqs.all_sequences(0, 3)
    with pytest.raises(ValueError, match=r"^length must be >= 1, got 0$"):
        seqs.all_sequences(2, 0)


def test_random_sequences_are_seeded_with_bos_first() -> None:
    assert seqs.random_sequences(3, 5, 2).tolist() == [[3, 0, 2, 0, 1], [3, 1, 1, 1, 0]]
    assert seqs.random_sequences(3, 5, 2, seed=1).tolist() == [[3, 2, 0, 2, 1], [3, 2, 2, 2, 0]]
    assert seqs.random_sequences(1, 1, 1).tolist() == [[1]]      # every minimum at once
    for name, args in (("vocab_size", (0, 2, 1)), ("n", (2, 0, 1)), ("count", (2, 2, 0))):
        with pytest.raises(ValueError, match=rf"^{name} must be >= 1, got 0$"):
            seqs.random_sequences(*args)


# the families of `adversarial_sequences`, pinned row by row (issue 13: a changed family fails)
ADVERSARIAL_1_4_1 = [[1, 0, 0, 0]] * 11
ADVERSARIAL_2_6_1 = [
    [2, 0, 0, 0, 0, 0], [2, 0, 1, 0, 1, 0], [2, 0, 1, 0, 1, 0], [2, 0, 1, 0, 1, 0],
    [2, 1, 1, 1, 1, 0], [2, 0, 0, 1, 1, 0], [2, 0, 0, 0, 1, 0], [2, 0, 1, 1, 1, 0],
    [2, 0, 0, 1, 1, 0], [2, 1, 0, 0, 1, 0], [2, 1, 1, 0, 0, 0], [2, 1, 1, 1, 1, 1],
    [2, 0, 1, 1, 1, 1]]
ADVERSARIAL_3_7_2 = [
    [3, 0, 0, 0, 0, 0, 0], [3, 0, 1, 2, 0, 1, 2], [3, 0, 1, 0, 1, 0, 1], [3, 0, 1, 0, 2, 0, 0],
    [3, 1, 1, 1, 1, 1, 0], [3, 0, 0, 0, 1, 2, 0], [3, 0, 0, 0, 0, 1, 0], [3, 0, 1, 2, 2, 2, 0],
    [3, 0, 0, 1, 2, 2, 0], [3, 2, 0, 0, 1, 2, 0], [3, 2, 2, 0, 0, 1, 0], [3, 2, 2, 2, 0, 0, 0],
    [3, 1, 1, 0, 1, 1, 0], [3, 1, 1, 1, 1, 1, 1], [3, 2, 0, 2, 2, 0, 2], [3, 0, 1, 0, 0, 1, 0]]
ADVERSARIAL_4_5_0 = [
    [4, 0, 0, 0, 0], [4, 0, 1, 2, 3], [4, 0, 1, 0, 1], [4, 0, 1, 0, 0], [4, 1, 1, 1, 0],
    [4, 0, 1, 2, 0], [4, 0, 0, 1, 0], [4, 0, 1, 2, 0], [4, 0, 0, 1, 0], [4, 2, 0, 0, 0]]


@pytest.mark.parametrize("V, n, n_random, rows", [
    (1, 4, 1, ADVERSARIAL_1_4_1), (2, 6, 1, ADVERSARIAL_2_6_1), (3, 7, 2, ADVERSARIAL_3_7_2),
    (4, 5, 0, ADVERSARIAL_4_5_0)])
def test_adversarial_sequences_row_by_row(V, n, n_random, rows) -> None:
    got = seqs.adversarial_sequences(V, n, n_random=n_random)
    assert got.dtype == torch.long and got.tolist() == rows


def test_adversarial_sequences_defaults_and_refusals() -> None:
    default = seqs.adversarial_sequences(3, 7)                  # seed 0, 200 random pairs
    assert default.shape == (7 + 5 + 2 * 200, 7)           # 7 families, 5 near-tie offsets
    assert torch.equal(default[:16], seqs.adversarial_sequences(3, 7, seed=0, n_random=2))
    assert not torch.equal(seqs.adversarial_sequences(3, 7, seed=1, n_random=2)[12:],
                           default[12:16])
    assert seqs.adversarial_sequences(2, 2, n_random=0).tolist() == [[2, 0]] * 7
    with pytest.raises(ValueError, match=r"^vocab_size must be >= 1, got 0$"):
        seqs.adversarial_sequences(0, 4)
    with pytest.raises(ValueError, match=r"^n must be >= 2, got 1$"):
        seqs.adversarial_sequences(2, 1)


def test_previous_index_and_induction_key_by_hand() -> None:
    assert seqs.previous_index(4).tolist() == [0, 0, 1, 2]
    assert seqs.previous_index(1).tolist() == [0]
    with pytest.raises(ValueError, match=r"^n must be >= 1, got 0$"):
        seqs.previous_index(0)
    # the LATEST earlier occurrence, plus one; 0 without one (and at BOS)
    assert seqs.induction_key(torch.tensor([[9, 1, 2, 1, 1, 2, 3]])).tolist() == [
        [0, 0, 0, 2, 4, 3, 0]]
    assert seqs.induction_key(torch.tensor([[5, 0, 0]])).tolist() == [[0, 0, 2]]
    for bad in (torch.zeros(1, 3), torch.zeros(3, dtype=torch.long), [[1, 2]]):
        with pytest.raises(TypeError, match=r"^tokens must be an integer torch tensor "
                                            r"\[batch, pos\]$"):
            seqs.induction_key(bad)


def test_tokenize_by_hand() -> None:
    assert seqs.tokenize("The cat. the Dog") == (["the", "cat", ".", "dog"], [0, 1, 2, 0, 3])
    for bad in ("", "  ", None, 3):
        with pytest.raises(ValueError, match=r"^text must be a non-empty string, got "):
            seqs.tokenize(bad)
    with pytest.raises(ValueError, match=r"got ' '$"):
        seqs.tokenize(" ")


# --- verify/induction_certificate.py --------------------------------------------------------


def test_tolerances_and_limits_are_the_stated_ones() -> None:
    assert cert.MASS_TOL == 1e-12 and cert.FLOAT_EXACT_LIMIT == 2.0 ** 53
    assert cert.UNIT_ROUNDOFF == 2.0 ** -53
    assert cert.at_most(1.0, 1.0) and cert.at_least(1.0, 1.0)      # equality is inside
    assert cert.at_most(0.25 + cert.MASS_TOL, 0.25)                # the tolerance's own edge
    assert cert.at_least(0.25 - cert.MASS_TOL, 0.25)
    assert not cert.at_most(1.0 + 3 * cert.MASS_TOL, 1.0)
    assert not cert.at_least(1.0 - 3 * cert.MASS_TOL, 1.0)


def test_integer_certificate_each_hypothesis() -> None:
    limit = cert.FLOAT_EXACT_LIMIT
    f64 = torch.float64
    assert cert.integer_certificate({})
    assert cert.integer_certificate({"x": torch.zeros(0, dtype=f64)})     # nothing to check
    assert cert.integer_certificate({"x": torch.tensor([float("inf"), float("nan")])})
    assert cert.integer_certificate({"x": torch.tensor([limit - 1], dtype=f64)})
    assert not cert.integer_certificate({"x": torch.tensor([limit], dtype=f64)})
    assert not cert.integer_certificate({"x": torch.tensor([2.5, 1.0], dtype=f64)})
    assert not cert.integer_certificate({"x": torch.tensor([-0.5], dtype=f64)})
    # 2 is an integer: fine as an activation, not as an attention weight
    assert cert.integer_certificate({"blocks.0.attn.hook_z": torch.tensor([2.0, 0.0])})
    assert not cert.integer_certificate({"blocks.0.attn.hook_pattern": torch.tensor([2.0, 0.0])})
    assert cert.integer_certificate({"blocks.0.attn.hook_pattern": torch.tensor([1.0, 0.0])})
    assert not cert.integer_certificate({"blocks.0.attn.hook_pattern_x": torch.tensor([0.5])})
    # one bad entry among good ones, in either place
    good = {"a": torch.tensor([1.0]), "blocks.1.attn.hook_pattern": torch.tensor([0.0, 1.0])}
    assert cert.integer_certificate(good)
    assert not cert.integer_certificate({**good, "b": torch.tensor([1.0, 0.25])})
    assert not cert.integer_certificate({"b": torch.tensor([0.25]), **good})


def test_off_target_mass_reads_the_target_column() -> None:
    pattern = torch.tensor([[[1.0, 0.0], [0.25, 0.75]]], dtype=torch.float64)
    assert cert.off_target_mass(pattern, torch.tensor([[0, 1]])).tolist() == [[0.0, 0.25]]
    assert cert.off_target_mass(pattern, torch.tensor([[1, 0]])).tolist() == [[1.0, 0.75]]


def test_check_exact_counts_and_sample() -> None:
    model = [induction.build_induction_model(2, 4, "hard")]
    got = cert.check_exact(model, sympy_sample=100, max_len=3)
    assert got == {"exact_all_sequences": True, "integer_certificate": True, "sequences": 7,
                   "sympy_sample": 7, "sympy_exact": True}
    got = cert.check_exact(model, sympy_sample=2, max_len=9)      # n_ctx caps the lengths
    assert got["sequences"] == 1 + 2 + 4 + 8 and got["sympy_sample"] == 2
    got = cert.check_exact(model, sympy_sample=0, max_len=1)
    assert got["sequences"] == 1 and got["sympy_sample"] == 0 and got["sympy_exact"]
    two = cert.check_exact(model * 2, sympy_sample=0, max_len=2)   # models add up
    assert two["sequences"] == 2 * 3
    with pytest.raises(ValueError, match=r"^sympy_sample must be >= 0, got -1$"):
        cert.check_exact(model, sympy_sample=-1, max_len=2)
    with pytest.raises(ValueError, match=r"^max_len must be >= 1, got 0$"):
        cert.check_exact(model, sympy_sample=0, max_len=0)


class _ReferenceRun(Transformer):
    """A model whose forward ignores its weights and returns the reference one-hot logits (a
    clean cache): torch says exact, the SymPy mirror (which reads the weights) may not."""

    def run_with_cache(self, tokens):  # noqa: ANN001, ANN202
        V = self.cfg.d_vocab - 1
        target = induction.induction_targets(tokens, V)
        logits = torch.nn.functional.one_hot(target, V + 1).to(torch.float64)
        return logits, {"blocks.0.attn.hook_pattern": torch.ones(1, dtype=torch.float64)}


def test_check_exact_sympy_condition_alone() -> None:
    model = induction.build_induction_model(2, 4, "hard")
    fake = _ReferenceRun(model.cfg)
    weights = model.weights()
    weights["unembed.W_U"] = 2 * weights["unembed.W_U"]
    fake.set_weights(weights)
    got = cert.check_exact([fake], sympy_sample=3, max_len=3)
    assert got["exact_all_sequences"] and got["integer_certificate"]
    assert got["sympy_sample"] == 3 and got["sympy_exact"] is False
    fair = _ReferenceRun(model.cfg)
    fair.set_weights(model.weights())
    assert cert.check_exact([fair], sympy_sample=3, max_len=3)["sympy_exact"] is True


def test_check_exact_seed_picks_the_sample() -> None:
    """W_U's column for token 1 zeroed in the weights the mirror reads: only the sequences with
    a target 1 disagree there, so a sample of one meets them for some seeds and not others."""
    model = induction.build_induction_model(2, 4, "hard")
    fake = _ReferenceRun(model.cfg)
    weights = model.weights()
    weights["unembed.W_U"] = weights["unembed.W_U"].clone()
    weights["unembed.W_U"][:, 1] = 0.0
    fake.set_weights(weights)
    picks = [cert.check_exact([fake], sympy_sample=1, max_len=3, seed=s)["sympy_exact"]
             for s in range(4)]
    assert picks == [False, True, False, True]
    assert cert.check_exact([fake], sympy_sample=1, max_len=3)["sympy_exact"] is False  # seed 0
    assert cert.check_exact([fake], sympy_sample=0, max_len=3)["sympy_exact"] is True
    # the whole pool in several orders: one wrong sequence anywhere in the sample is enough
    assert not any(cert.check_exact([fake], sympy_sample=7, max_len=3, seed=s)["sympy_exact"]
                   for s in range(4))


def test_softmax_report_numbers() -> None:
    soft = induction.build_induction_model(2, 6, "softmax", beta=2.0)
    tokens = seqs.all_sequences(2, 6)
    rep = cert.softmax_report(soft, tokens)
    logits, cache = soft.run_with_cache(tokens)
    target = induction.induction_targets(tokens, 2)
    p0, p1 = cache["blocks.0.attn.hook_pattern"][:, 0], cache["blocks.1.attn.hook_pattern"][:, 0]
    m1 = 1 - p0.gather(-1, seqs.previous_index(6).expand(len(tokens), -1)[..., None])[..., 0]
    m2 = 1 - p1.gather(-1, seqs.induction_key(tokens)[..., None])[..., 0]
    right = logits.gather(-1, target[..., None])[..., 0]
    rival = torch.stack([logits[..., c].where(target != c, -math.inf) for c in range(3)]).amax(0)
    assert rep["correct"] is False and rep["wrong_positions"] == 4
    assert rep["wrong_positions"] == int((logits.argmax(-1) != target).sum())
    assert rep["max_mass_1"] == float(m1.max()) and rep["max_mass_2"] == float(m2.max())
    assert rep["min_margin"] == float((right - rival).min()) < 0
    assert rep["bounds"] == induction.mass_bounds(2.0, 6)
    at_star = cert.softmax_report(induction.build_induction_model(2, 6, "softmax"), tokens)
    assert at_star["correct"] and at_star["wrong_positions"] == 0 and at_star["min_margin"] > 0
    b = at_star["bounds"]
    assert at_star["mass_1_within"] == (at_star["max_mass_1"] <= b["delta_1"] + cert.MASS_TOL)
    assert at_star["mass_2_within"] and at_star["margin_within"]


class _Fixed:
    """A stand-in softmax model: given logits and patterns, and the bounds of (beta, n_ctx)."""

    def __init__(self, logits, p0, p1, beta: float = 3.0) -> None:  # noqa: ANN001
        self.logits, self.p0, self.p1, self.beta, self.bos = logits, p0, p1, beta, 1
        self.cfg = type("cfg", (), {"n_ctx": logits.shape[1]})

    def run_with_cache(self, tokens):  # noqa: ANN001, ANN202
        return self.logits, {"blocks.0.attn.hook_pattern": self.p0[:, None],
                             "blocks.1.attn.hook_pattern": self.p1[:, None]}


def test_softmax_report_bounds_at_their_edges() -> None:
    """Masses exactly at delta_1 / delta_2 and the margin exactly at its bound are within;
    a little more (or less) is not. Tokens [BOS, 0, 0]: targets BOS, BOS, key 2 (token 0)."""
    beta = 3.0
    bound = induction.mass_bounds(beta, 3)
    tokens = torch.tensor([[1, 0, 0]])

    def run(d1: float, d2: float, margin: float) -> dict:
        p0 = torch.tensor([[[1.0, 0, 0], [1.0, 0, 0], [0, 1 - d1, d1]]], dtype=torch.float64)
        p1 = torch.tensor([[[1.0, 0, 0], [1.0, 0, 0], [0, d2, 1 - d2]]], dtype=torch.float64)
        logits = torch.tensor([[[0.0, 5.0], [0.0, 5.0], [5.0, 5.0 - margin]]], dtype=torch.float64)
        return cert.softmax_report(_Fixed(logits, p0, p1, beta), tokens)

    edge = run(bound["delta_1"], bound["delta_2"], bound["margin"])
    assert edge["mass_1_within"] and edge["mass_2_within"] and edge["margin_within"]
    assert edge["max_mass_1"] == pytest.approx(bound["delta_1"], abs=1e-15) and edge["correct"]
    out1 = run(bound["delta_1"] + 1e-9, bound["delta_2"], bound["margin"])
    assert not out1["mass_1_within"] and out1["mass_2_within"] and out1["margin_within"]
    out2 = run(bound["delta_1"], bound["delta_2"] + 1e-9, bound["margin"])
    assert out2["mass_1_within"] and not out2["mass_2_within"] and out2["margin_within"]
    out3 = run(bound["delta_1"], bound["delta_2"], bound["margin"] - 1e-9)
    assert out3["mass_1_within"] and out3["mass_2_within"] and not out3["margin_within"]
    assert out3["min_margin"] == pytest.approx(bound["margin"] - 1e-9, abs=1e-12)


def test_rounding_estimate_formula() -> None:
    u = 2.0 ** -53
    est = cert.rounding_estimate(2.0, 4)
    # scores: 4 u * 3 * beta * N^2 = 384 u; logits: twice that plus 4 N u = 784 u
    assert est == {"estimated_logit_error": 784 * u, "proved_margin_floor": 1 / 8}
    assert cert.rounding_estimate(1.0, 2)["proved_margin_floor"] == 0.25
    with pytest.raises(ValueError, match=r"^beta must be "):
        cert.rounding_estimate(0.0, 8)
    with pytest.raises(ValueError, match=r"^n_ctx must be >= 2, got 1$"):
        cert.rounding_estimate(1.0, 1)


# --- verify/beta_threshold.py ---------------------------------------------------------------


def test_lower_bound_and_its_family() -> None:
    assert bt.lower_bound(3) == math.log(3) and bt.lower_bound(8) == math.log(13)
    with pytest.raises(ValueError, match=r"^n_ctx must be >= 3, got 2$"):
        bt.lower_bound(2)
    assert bt.lower_bound_family(3).tolist() == [[2, 1, 0]]
    assert bt.lower_bound_family(5, vocab_size=3).tolist() == [[3, 1, 1, 1, 0]]
    with pytest.raises(ValueError, match=r"^n_ctx must be >= 3, got 2$"):
        bt.lower_bound_family(2)
    with pytest.raises(ValueError, match=r"^vocab_size must be >= 2, got 1$"):
        bt.lower_bound_family(4, vocab_size=1)


def test_all_correct_reads_the_builder_and_every_chunk(monkeypatch) -> None:
    tokens = seqs.all_sequences(2, 4)
    assert bt.all_correct(2, 4, 2.0, tokens) and not bt.all_correct(2, 4, 1.5, tokens)
    seen = []

    def build(V, N, attention, beta):  # noqa: ANN001, ANN202
        seen.append((V, N, attention, beta))
        return induction.build_induction_model(V, N, attention, beta=2 * beta)

    assert bt.all_correct(2, 4, 1.0, tokens, build=build) and seen == [(2, 4, "softmax", 1.0)]
    # at beta 1.7 only rows 1 and 6 fail; alone in the last chunk of three, row 6 is still found
    monkeypatch.setattr(bt, "CHUNK", 3)
    good = tokens[[0, 2, 3, 4, 5, 7]]
    assert bt.all_correct(2, 4, 1.7, good)
    assert not bt.all_correct(2, 4, 1.7, torch.cat([good, tokens[[6]]]))


def test_bisect_steps_and_messages() -> None:
    # width 1, tol 1/2: exactly one halving (the loop stops at width == tol)
    assert bt.bisect(lambda b: b >= 1.2, 1.0, 2.0, tol=0.5) == (1.0, 1.5)
    assert bt.bisect(lambda b: b >= 1.7, 1.0, 2.0, tol=0.5) == (1.5, 2.0)
    assert bt.bisect(lambda b: b >= 1.2, 1.0, 2.0, tol=0.25) == (1.0, 1.25)
    lo, hi = bt.bisect(lambda b: b >= 1.3, 1.0, 2.0)              # default tol 1e-4
    assert hi - lo <= bt.THRESHOLD_TOL < 2 * (hi - lo)
    with pytest.raises(ValueError, match=r"^bracket must satisfy 0 < lo < hi, got lo=0, hi=1$"):
        bt.bisect(lambda b: True, 0, 1)
    with pytest.raises(ValueError, match=r"^bracket must satisfy 0 < lo < hi, got lo=1, hi=1$"):
        bt.bisect(lambda b: True, 1, 1)
    with pytest.raises(ValueError, match=r"^bracket \[1, 2\] must fail at lo and pass at hi$"):
        bt.bisect(lambda b: b < 1.5, 1, 2)
    with pytest.raises(ValueError, match=r"^bracket \[1, 2\] must fail at lo and pass at hi$"):
        bt.bisect(lambda b: False, 1, 2)
    with pytest.raises(ValueError, match=r"^tol must be "):
        bt.bisect(lambda b: b >= 1.5, 1, 2, tol=-1.0)


class _Stage:
    """A stand-in model for `classify_failures`: fixed logits and block-1 pattern, BOS = 2."""

    bos = 2

    def __init__(self, logits, pattern) -> None:  # noqa: ANN001
        self.logits, self.pattern = logits, pattern

    def run_with_cache(self, batch):  # noqa: ANN001, ANN202
        return self.logits[: len(batch)], {"blocks.1.attn.hook_pattern": self.pattern[:, None]}


def _stage(rows: list[tuple[list[int], list[float]]]) -> tuple:
    """Row b: tokens and block-1 attention of its LAST query; every earlier position is right,
    the last one predicts the id after its target (mod 3): wrong."""
    tokens = torch.tensor([r[0] for r in rows])
    n = tokens.shape[1]
    target = induction.induction_targets(tokens, 2)
    logits = torch.nn.functional.one_hot(target, 3).to(torch.float64)
    logits[:, -1] = torch.nn.functional.one_hot((target[:, -1] + 1) % 3, 3).to(torch.float64)
    pattern = torch.eye(n, dtype=torch.float64).expand(len(rows), n, n).clone()
    pattern[:, -1] = torch.tensor([r[1] for r in rows], dtype=torch.float64)
    return _Stage(logits, pattern), tokens


def test_classify_failures_every_family() -> None:
    # [BOS, 0, 1, 0]: target key 2 (a match); rivals: BOS, key 3 (non-match), key 1 (x_0 = BOS)
    model, tokens = _stage([([2, 0, 1, 0], [0.5, 0.1, 0.3, 0.1]),     # match vs BOS
                            ([2, 0, 1, 0], [0.1, 0.1, 0.3, 0.5]),     # match vs non-match
                            ([2, 0, 0, 0], [0.1, 0.1, 0.7, 0.1]),     # key 2: x_1 = x_3, match
                            ([2, 1, 1, 0], [0.1, 0.1, 0.1, 0.7])])    # no match vs non-match
    got = bt.classify_failures(model, tokens)
    assert got["families"] == {"match vs BOS": 1, "match vs non-match": 1, "match vs match": 1,
                               "no match vs non-match": 1}
    assert got["shortest_example"] == {"sequence": [2, 0, 1, 0], "position": 3,
                                       "family": "match vs BOS", "target_key": 2, "rival_key": 0}
    # the target key's own weight never counts as the rival, however large
    model, tokens = _stage([([2, 0, 1, 0], [0.2, 0.1, 0.6, 0.1])])
    assert bt.classify_failures(model, tokens)["shortest_example"]["rival_key"] == 0
    # counted most common first
    model, tokens = _stage([([2, 1, 1, 0], [0.1, 0.1, 0.1, 0.7])] * 2
                           + [([2, 0, 1, 0], [0.5, 0.1, 0.3, 0.1])])
    assert list(bt.classify_failures(model, tokens)["families"].items()) == [
        ("no match vs non-match", 2), ("match vs BOS", 1)]


def test_classify_failures_keeps_the_shortest_and_the_first() -> None:
    """A failure at position 2 in row 1 beats one at position 3 in row 0; among equals the first
    row found stays."""
    tokens = torch.tensor([[2, 1, 1, 0], [2, 0, 1, 1], [2, 1, 0, 1]])
    target = induction.induction_targets(tokens, 2)
    logits = torch.nn.functional.one_hot(target, 3).to(torch.float64)
    logits[0, 3] = torch.tensor([1.0, 0, 0])        # row 0 wrong at 3
    logits[1, 2] = torch.tensor([1.0, 0, 0])        # row 1 wrong at 2
    logits[2, 2] = torch.tensor([1.0, 0, 0])        # row 2 wrong at 2 too
    pattern = torch.eye(4, dtype=torch.float64).expand(3, 4, 4).clone()
    got = bt.classify_failures(_Stage(logits, pattern), tokens)
    assert got["shortest_example"]["sequence"] == [2, 0, 1]
    assert got["shortest_example"]["position"] == 2
    assert sum(got["families"].values()) == 3


def test_classify_failures_of_a_real_model() -> None:
    got = bt.classify_failures(induction.build_induction_model(2, 5, "softmax", beta=0.5),
                               seqs.all_sequences(2, 5))
    assert got == {"families": {"match vs non-match": 10, "no match vs non-match": 6},
                   "shortest_example": {"sequence": [2, 0, 0, 1], "position": 3,
                                        "family": "no match vs non-match", "target_key": 0,
                                        "rival_key": 3}}


def _scaled(factor: float):  # noqa: ANN202
    """A builder whose model runs at ``factor`` times the beta it is asked for... divided."""
    def build(V, N, attention, beta):  # noqa: ANN001, ANN202
        return induction.build_induction_model(V, N, attention, beta=beta / factor)
    return build


TRUE_2_4 = 1.7909937163847829     # threshold(2, 4) at the default tolerance (bisection result)


def test_threshold_record_of_a_tiny_case() -> None:
    got = bt.threshold(2, 4, tol=0.05)
    star = induction.beta_star(4)
    assert got["vocab_size"] == 2 and got["n_ctx"] == 4 and got["exhaustive"] is True
    assert got["sequences"] == 8 and got["tol"] == 0.05 and got["beta_star"] == star
    assert got["lower_bound"] == math.log(5) and got["ln_2N"] == math.log(8)
    assert got["just_below"] < TRUE_2_4 <= got["threshold"]
    assert got["threshold"] - got["just_below"] <= 0.05
    assert got["beta_star_over_threshold"] == star / got["threshold"]
    assert got["monotone_above"] is True and 0 <= got["seconds"] < 600
    assert got["failures_just_below"]["families"] == {"no match vs non-match": 2}
    given = bt.threshold(2, 4, seqs.all_sequences(2, 4)[:4], tol=0.05)
    assert given["exhaustive"] is False and given["sequences"] == 4
    with pytest.raises(ValueError, match=r"^vocab_size must be >= 1, got 0$"):
        bt.threshold(0, 4)
    with pytest.raises(ValueError, match=r"^n_ctx must be >= 3, got 2$"):
        bt.threshold(2, 2)


def test_threshold_bracket_doubles_above_beta_star() -> None:
    """A builder 3 x too cold needs 3 x the threshold (5.37): beta* (3.47) fails, 2 beta* passes;
    one 10 x too cold (17.9) needs 8 beta* (27.7), the last top; 20 x never passes: inf."""
    star = induction.beta_star(4)
    three = bt.threshold(2, 4, build=_scaled(3), tol=0.05)
    assert star < three["just_below"] < 3 * TRUE_2_4 <= three["threshold"] < 2 * star
    ten = bt.threshold(2, 4, build=_scaled(10), tol=0.05)
    assert 4 * star < 10 * TRUE_2_4 <= ten["threshold"] < 8 * star
    never = bt.threshold(2, 4, build=_scaled(20), tol=0.05)
    assert never["threshold"] == math.inf and never["just_below"] == 8 * star
    assert never["monotone_above"] is False
    assert set(never) == {"vocab_size", "n_ctx", "exhaustive", "sequences", "tol", "beta_star",
                          "lower_bound", "threshold", "just_below", "monotone_above",
                          "failures_just_below"}
    assert never["failures_just_below"]["shortest_example"]["sequence"] == [2, 0, 0, 1]


def test_threshold_scans_the_grid_for_monotonicity() -> None:
    """A builder that breaks in a narrow window around one grid point (hi + (top - hi) k / 24)
    makes `monotone_above` false; the same window between two grid points does not."""
    first = bt.threshold(2, 4, tol=0.05)
    hi, top = first["threshold"], induction.beta_star(4)
    step = (top - hi) / bt.MONOTONE_GRID

    def broken_near(point: float):  # noqa: ANN202
        def build(V, N, attention, beta):  # noqa: ANN001, ANN202
            if abs(beta - point) < step / 10:
                beta = 0.5
            return induction.build_induction_model(V, N, attention, beta=beta)
        return build

    for k in (1, 12, 23):
        found = bt.threshold(2, 4, build=broken_near(hi + step * k), tol=0.05)
        assert found["threshold"] == hi and found["monotone_above"] is False
    between = bt.threshold(2, 4, build=broken_near(hi + step * 1.5), tol=0.05)
    assert between["monotone_above"] is True


def test_adversarial_threshold_and_record_shapes(monkeypatch) -> None:
    got = bt.adversarial_threshold(2, 4, n_random=3)
    assert got["exhaustive"] is False
    assert got["sequences"] == len(seqs.adversarial_sequences(2, 4)) + 3
    assert bt.adversarial_threshold(2, 4)["sequences"] == len(seqs.adversarial_sequences(2, 4)) + 300
    rec = bt.record(cases=((2, 3),), adversarial=((2, 3),))
    assert rec["command"] == ("python -m verify.beta_threshold --out "
                              "proofs/data/induction_thresholds.json")
    assert rec["torch"] == torch.__version__ and set(rec) == {
        "command", "torch", "python", "machine", "exhaustive", "adversarial"}
    assert [r["n_ctx"] for r in rec["exhaustive"]] == [3] and rec["exhaustive"][0]["exhaustive"]
    assert rec["adversarial"][0]["exhaustive"] is False


def test_main_writes_or_prints_the_record(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setattr(bt, "record", lambda: {"a": [1]})
    threads = torch.get_num_threads()
    try:
        out = tmp_path / "t.json"
        assert bt.main(["--out", str(out)]) == 0
        assert out.read_text() == json.dumps({"a": [1]}, indent=1) + "\n"
        assert torch.get_num_threads() == 1
        assert capsys.readouterr().out == ""
        assert bt.main([]) == 0
        assert capsys.readouterr().out == json.dumps({"a": [1]}, indent=1) + "\n"
    finally:
        torch.set_num_threads(threads)
