"""The six induction-family claims: each literal check's outcome can flip the derived verdict,
and each condition of each check fails on an input broken for exactly that condition."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from constructions import induction, one_layer_induction
from constructions.transformer import Transformer
from verify import detectors
from verify.claims import induction as ci
from verify.claims import induction_examples as ce
from verify.induction_certificate import MASS_TOL, at_least, at_most
from verify.registry import derive_verdict
from verify.sequences import tokenize


def _edit(model: Transformer, name: str, change: Callable[[torch.Tensor], None]) -> Transformer:
    """``model`` with the weight ``name`` changed in place by ``change`` (on a copy)."""
    w = model.weights()[name].clone()
    change(w)
    model.set_weights({name: w})
    return model


def _hard(V: int = 3, N: int = 6, beta: float | None = None) -> induction.InductionModel:
    return induction.build_induction_model(V, N, "hard", beta)


def _soft(V: int, N: int, beta: float | None = None) -> induction.InductionModel:
    return induction.build_induction_model(V, N, "softmax", beta)


def _self_attending(model: Transformer) -> Transformer:
    """Block 0 queries for i instead of i - 1 (a layer-0-only break)."""
    lay = model.layout
    return _edit(model, "blocks.0.attn.W_Q", lambda w: w.__setitem__((0, lay.pos_one, 0), 0.0))


def _scale(model: Transformer, name: str, factor: float) -> Transformer:
    return _edit(model, name, lambda w: w.mul_(factor))


# --- MASS_TOL edges ------------------------------------------------------------------------

def test_tolerance_edges() -> None:
    b = 0.25
    assert at_most(b + MASS_TOL, b) and not at_most(b + 2 * MASS_TOL, b)
    assert at_least(b - MASS_TOL, b) and not at_least(b - 2 * MASS_TOL, b)


# --- induction.previous_token_head ---------------------------------------------------------

def test_previous_token_literal_fails_near_the_bos_baseline() -> None:
    found = ci.check_previous_token_literal()
    ev = found.evidence
    assert not found.holds and ev["layer1_output_is_previous_token"]
    assert ev["always_bos_baseline"] < ev["accuracy"] < 0.6  # above the baseline, far below 1


def test_previous_token_verdict_flips_with_the_literal_input() -> None:
    restated = ci.check_previous_token_restated().holds
    assert derive_verdict(ci.check_previous_token_literal().holds, restated) == "corrected"
    ours = ci.check_previous_token_literal(model=_hard(4, 12))
    assert ours.holds and derive_verdict(ours.holds, restated) == "confirmed"


@pytest.mark.parametrize("broken, failing", [
    (lambda: _self_attending(_hard()), {"pattern_is_shift", "prev_is_previous_token"}),
    (lambda: _edit(_hard(), "embed.W_E", lambda w: w.__setitem__([0, 1], w[[1, 0]].clone())),
     {"prev_is_previous_token"}),
    (lambda: _hard(beta=0.5), {"integer_certificate"}),
    (lambda: _edit(_hard(), "blocks.0.attn.W_O",
                   lambda w: w.__setitem__((0, 0, _hard().layout.out.start), 1.0)),
     {"ov_zero_elsewhere"}),
    (lambda: _edit(_hard(), "blocks.0.attn.W_O",
                   lambda w: w.__setitem__((0, 0, _hard().layout.prev.start), 2.0)),
     {"ov_token_to_previous", "prev_is_previous_token"}),
])
def test_previous_token_restated_hard_conditions(broken, failing) -> None:
    found = ci.check_previous_token_restated(hard=broken())
    flags = {k for k, v in found.evidence.items() if v is False}
    assert not found.holds and flags == failing


def test_previous_token_restated_softmax_conditions() -> None:
    star = induction.beta_star(32)
    below = ci.check_previous_token_restated(soft=_soft(8, 32, star * (1 - 1e-9)))
    assert not below.holds and below.evidence["certified_beta"] is False
    assert below.evidence["max_mass_off_previous"] <= below.evidence["bound_delta_1"]
    at = ci.check_previous_token_restated(soft=_soft(8, 32, star))
    assert at.holds and at.evidence["certified_beta"]
    wrong = _scale(_soft(8, 32), "blocks.0.attn.W_Q", 0.5)     # certified beta, wrong weights
    found = ci.check_previous_token_restated(soft=wrong)
    assert not found.holds and found.evidence["certified_beta"]
    assert found.evidence["max_mass_off_previous"] > found.evidence["bound_delta_1"]


# --- induction.induction_head --------------------------------------------------------------

def test_induction_literal_holds_for_the_match_only_head_and_flips() -> None:
    literal = ci.check_induction_literal()
    assert literal.holds and literal.evidence["share_equal_to_most_recent_successor"] < 1
    broken = ci.check_induction_literal(model=_self_attending(
        induction.build_section_variant(3, 6, "match_only")))
    assert not broken.holds and not broken.evidence["attends_to_a_successor_key"]
    assert derive_verdict(literal.holds, True) == "confirmed"
    assert derive_verdict(broken.holds, True) == "corrected"


def test_induction_literal_prediction_condition() -> None:
    model = induction.build_section_variant(3, 6, "match_only")
    permuted = _edit(model, "unembed.W_U", lambda w: w.copy_(w[:, [1, 2, 0, 3]].clone()))
    found = ci.check_induction_literal(model=permuted)
    assert not found.holds and found.evidence["attends_to_a_successor_key"]
    assert not found.evidence["predicts_a_successor"]


def _restated(**kw) -> dict:
    kw.setdefault("hard_models", [_hard(2, 6)])
    kw.setdefault("sympy_sample", 0)
    found = ci.check_induction_restated(**kw)
    return {"holds": found.holds, **found.evidence}


def test_induction_restated_default_holds() -> None:
    found = ci.check_induction_restated(sympy_sample=3)
    assert found.holds, found.evidence
    assert found.evidence["first_failing_family"]["family"] == "match vs match"


@pytest.mark.parametrize("hard, failing", [
    (lambda: _scale(_hard(2, 6), "unembed.W_U", 2.0), "exact_all_sequences"),
    (lambda: _edit(_hard(2, 6), "blocks.1.attn.W_Q",
                   lambda w: w.__setitem__((0, _hard(2).layout.pos_one, 3), 0.0)),
     "exact_all_sequences integer_certificate"),   # no recency: ties share, patterns of 1/2
    (lambda: _hard(2, 6, beta=0.5), "integer_certificate"),
])
def test_induction_restated_exact_conditions(hard, failing) -> None:
    ev = _restated(hard_models=[hard()])
    assert not ev["holds"]
    conditions = ("exact_all_sequences", "integer_certificate", "sympy_exact", "correct",
                  "mass_1_within", "mass_2_within", "margin_within", "certified_beta",
                  "threshold_above_lower_bound", "threshold_below_beta_star")
    assert {k for k in conditions if ev[k] is False} == set(failing.split())


def test_induction_restated_softmax_conditions() -> None:
    star = induction.beta_star(24)
    ev = _restated(soft=_soft(4, 24, star * (1 - 1e-9)))
    assert not ev["holds"] and not ev["certified_beta"] and ev["correct"] and ev["mass_1_within"]
    ev = _restated(soft=_scale(_soft(4, 24), "blocks.0.attn.W_Q", 0.9))
    assert not ev["holds"] and not ev["mass_1_within"] and ev["certified_beta"]
    assert ev["mass_2_within"] and ev["margin_within"] and ev["correct"]
    biased = _edit(_soft(4, 24), "unembed.b_U", lambda b: b.__setitem__(4, 0.3))
    ev = _restated(soft=biased)
    assert not ev["holds"] and not ev["margin_within"] and ev["correct"] and ev["mass_2_within"]
    # block 1 blurred: mass_2 crosses delta_2 where the margin crosses 1 - 2 delta_2 (the rival
    # takes the whole off-target mass), so the two fail together
    ev = _restated(soft=_scale(_soft(4, 24), "blocks.1.attn.W_Q", 0.5))
    assert not ev["holds"] and not ev["mass_2_within"] and ev["mass_1_within"]
    assert ev["certified_beta"] and not ev["margin_within"]
    ev = _restated(soft=_soft(4, 24, 1.0))                      # far too cold
    assert not ev["holds"] and not ev["correct"]


def test_induction_restated_threshold_conditions() -> None:
    def hotter(V, N, attention, beta):  # noqa: ANN001, ANN202 - twice the stated beta
        return induction.build_induction_model(V, N, attention, beta=beta * 2)

    def colder(V, N, attention, beta):  # noqa: ANN001, ANN202 - a third of the stated beta
        return induction.build_induction_model(V, N, attention, beta=beta / 3)

    ev = _restated(build=hotter)
    assert not ev["holds"] and not ev["threshold_above_lower_bound"]
    assert ev["threshold_below_beta_star"]
    ev = _restated(build=colder)
    assert not ev["holds"] and not ev["threshold_below_beta_star"]
    assert ev["threshold_above_lower_bound"]


# --- induction.two_layers_required ---------------------------------------------------------

def _flat_one_layer() -> Transformer:
    model = one_layer_induction.build_one_layer_induction(2, 6)
    return _edit(model, "blocks.0.mlp.W_out", lambda w: w.__setitem__(w != 0, 1.0))


def test_two_layers_literal_flips_with_the_counterexample() -> None:
    restated = ci.check_two_layers_restated().holds
    literal = ci.check_two_layers_literal()
    assert restated and not literal.holds and literal.evidence["counterexample_solves_task"]
    assert derive_verdict(literal.holds, restated) == "corrected"
    broken = ci.check_two_layers_literal([_flat_one_layer()])
    assert broken.holds and derive_verdict(broken.holds, restated) == "confirmed"
    with pytest.raises(ValueError, match="one_layer"):
        ci.check_two_layers_literal([_hard()])


class _SmearedKeys(Transformer):
    """A one-layer model whose input adds half the previous token's embedding ("smeared keys"):
    outside Lemma 2's class, so its block-0 keys DO see x_{j-1}."""

    def _run(self, tokens, cache):  # noqa: ANN001, ANN202
        embed = self.embed.W_E[tokens]
        embed = embed + 0.5 * torch.cat([embed[:, :1], embed[:, :-1]], dim=1)
        resid = embed + self.pos_embed.W_pos[: tokens.shape[1]]
        for layer, block in enumerate(self.blocks):
            resid = block(resid, cache, f"blocks.{layer}.")
        return resid @ self.unembed.W_U + self.unembed.b_U


def test_two_layers_restated_conditions() -> None:
    base = ci.default_first_layers()[1]
    smeared = _SmearedKeys(base.cfg)
    smeared.set_weights(base.weights())
    ev = ci.check_two_layers_restated(first_layers=[smeared]).evidence
    assert ev["layer1_keys_blind_to_previous_token"] is False and ev["one_layer_model_exact"]
    blind = _edit(_hard(2, 4), "blocks.1.attn.W_K",
                  lambda w: w[0, _hard(2, 4).layout.prev].zero_())
    found = ci.check_two_layers_restated(two_layer=blind)
    assert not found.holds and found.evidence["layer2_keys_see_previous_token"] is False
    found = ci.check_two_layers_restated(one_layer=[_flat_one_layer()])
    assert not found.holds and not found.evidence["one_layer_model_exact"]
    assert found.evidence["integer_certificate"]
    halved = one_layer_induction.build_one_layer_induction(2, 6)
    halved = _scale(_scale(halved, "unembed.W_U", 0.5), "unembed.b_U", 0.5)
    found = ci.check_two_layers_restated(one_layer=[halved])
    assert not found.holds and found.evidence["one_layer_model_exact"]
    assert not found.evidence["integer_certificate"]


class _Recording(Transformer):
    """Records the token batches it is run on."""

    def run_with_cache(self, tokens, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
        self.seen = [*getattr(self, "seen", []), tokens.tolist()]
        return super().run_with_cache(tokens, *args, **kwargs)


def test_lemma_2_pair_is_the_one_stated() -> None:
    """Both halves of the two-layer check run Lemma 2's pair [BOS, 0, 1, 0] vs [BOS, 1, 1, 0]
    (BOS = d_vocab - 1): the rows differ only in x_1, and only the first has x_1 = x_3."""
    base = ci.default_first_layers()[1]
    first = _Recording(base.cfg)
    first.set_weights(base.weights())
    hard = _hard(3, 4)
    second = _Recording(hard.cfg)
    second.set_weights(hard.weights())
    ci.check_two_layers_restated(first_layers=[first], two_layer=second, max_len=2)
    assert first.seen == [[[2, 0, 1, 0], [2, 1, 1, 0]]]
    assert second.seen == [[[3, 0, 1, 0], [3, 1, 1, 0]]]


# --- worked_example_2.cat_sat --------------------------------------------------------------

CAT_V, CAT_N = len(tokenize(ce.SENTENCE)[0]), len(tokenize(ce.SENTENCE)[1]) + 1


def test_cat_sat_literal_and_its_flip() -> None:
    literal, restated = ce.check_cat_sat_literal(), ce.check_cat_sat_restated()
    assert literal.holds and restated.holds
    assert literal.evidence["attended_word"] == "sat" and literal.evidence["prediction"] == "sat"
    broken = ce.check_cat_sat_literal(model=_self_attending(_soft(CAT_V, CAT_N)))
    assert not broken.holds and derive_verdict(broken.holds, restated.holds) == "corrected"


def test_cat_sat_prediction_read_from_the_vocabulary() -> None:
    """Issue 9, 3f: the old check read words[predicted + 1], a vocabulary id used as a position.
    In this sentence "sat" has id 5 but words[6] is "cat": the old check would fail it."""
    text = "The dog saw the cat sat on the mat. The cat"
    vocab, ids = tokenize(text)
    words = ["<bos>", *[vocab[i] for i in ids]]
    assert words[vocab.index("sat") + 1] != "sat"                # where the old bug shows
    found = ce.check_cat_sat_literal(text=text)
    assert found.holds and found.evidence["prediction"] == "sat"
    assert ce.check_cat_sat_restated(text=text).holds


def test_cat_sat_literal_conditions() -> None:
    model = _soft(CAT_V, CAT_N)
    sat = tokenize(ce.SENTENCE)[0].index("sat")
    swap = [i for i in range(CAT_V + 1)]
    swap[sat], swap[0] = 0, sat
    permuted = _edit(model, "unembed.W_U", lambda w: w.copy_(w[:, swap].clone()))
    ev = ce.check_cat_sat_literal(model=permuted).evidence
    assert ev["attended_word"] == "sat" and ev["layer1_moved_there"] == "cat"
    assert ev["prediction"] != "sat"
    lay, cat = model.layout, tokenize(ce.SENTENCE)[0].index("cat")
    swap = [i for i in range(CAT_V + 1)]
    swap[cat], swap[0] = 0, cat
    relabel = [lay.prev.start + s for s in swap]                 # prev subspace relabelled ...
    moved = _soft(CAT_V, CAT_N)
    _edit(moved, "blocks.0.attn.W_O", lambda w: w[0][:, lay.prev].copy_(w[0][:, relabel].clone()))
    _edit(moved, "blocks.1.attn.W_K", lambda w: w[0][lay.prev].copy_(w[0][relabel].clone()))
    found = ce.check_cat_sat_literal(model=moved)                 # ... consistently in block 1
    assert not found.holds and found.evidence["attended_word"] == "sat"
    assert found.evidence["prediction"] == "sat" and found.evidence["layer1_moved_there"] != "cat"


def test_cat_sat_restated_conditions() -> None:
    star = induction.beta_star(CAT_N)
    below = ce.check_cat_sat_restated(model=_soft(CAT_V, CAT_N, star * (1 - 1e-9)))
    assert not below.holds and below.evidence["certified_beta"] is False
    assert below.evidence["weight_on_target"] >= below.evidence["bound"]
    blurred = _scale(_soft(CAT_V, CAT_N), "blocks.1.attn.W_Q", 0.02)
    found = ce.check_cat_sat_restated(model=blurred)
    assert not found.holds and found.evidence["weight_on_target"] < found.evidence["bound"]
    assert found.evidence["hard_row_one_hot"]
    found = ce.check_cat_sat_restated(hard=_self_attending(_hard(CAT_V, CAT_N)))
    assert not found.holds and not found.evidence["hard_row_one_hot"]


# --- demo_1 --------------------------------------------------------------------------------

def test_ideal_pattern_literal_flips_with_the_matrix() -> None:
    restated = ce.check_ideal_restated()
    literal = ce.check_ideal_literal()
    assert restated.holds and not literal.holds
    assert derive_verdict(literal.holds, restated.holds) == "corrected"
    fixed = ce.check_ideal_literal(ce.reference_frame())
    assert fixed.holds and derive_verdict(fixed.holds, True) == "confirmed"
    assert [7, 4] in fixed.evidence["reference_nonzero"]


def test_ideal_pattern_restated_conditions() -> None:
    demo = _hard(5, 9)
    no_sink = _edit(demo, "blocks.1.attn.W_Q", lambda w: w.__setitem__((0, demo.layout.pos_one, 5), 0.0))
    found = ce.check_ideal_restated(no_sink)
    assert not found.holds and found.evidence["rows_on_bos"] != found.evidence["rows_without_target"]
    soft = ce.check_ideal_restated(_soft(5, 9))   # within delta_2 of the pattern, not equal
    assert not soft.holds and soft.evidence["rows_on_bos"] == soft.evidence["rows_without_target"]


def _offset_detector(A: torch.Tensor) -> bool:
    """A detector for [BOS] + block + block (half 20): mass on the offset diagonal."""
    half = (A.shape[0] - 1) // 2
    rows = torch.arange(half + 1, A.shape[0])
    return bool(A[rows, rows - half + 1].mean() > 0.5)


def test_detector_literal_flips_with_the_detector() -> None:
    literal, restated = ce.check_detector_literal(), ce.check_detector_restated()
    assert not literal.holds and restated.holds
    assert literal.evidence["on_induction_head"] == "None"
    assert derive_verdict(literal.holds, restated.holds) == "corrected"
    ours = ce.check_detector_literal(detector=_offset_detector)
    assert ours.holds and derive_verdict(ours.holds, restated.holds) == "confirmed"
    assert not ce.check_detector_literal(detector=lambda A: True).holds   # says yes to all


def test_detector_restated_conditions() -> None:
    def flags(**kw) -> set[str]:
        found = ce.check_detector_restated(**kw)
        assert not found.holds
        return {k for k, v in found.evidence.items() if v is False}

    lay = _soft(20, 41).layout
    no_match = _edit(_soft(20, 41), "blocks.1.attn.W_K", lambda w: w[0, lay.prev].zero_())
    assert flags(model=no_match) == {"induction_score_at_least_bound"}
    blurred = _scale(_soft(20, 41), "blocks.0.attn.W_Q", 0.6)
    assert flags(model=blurred) == {"previous_score_at_least_bound"}
    permuted = _edit(_soft(20, 41), "unembed.W_U", lambda w: w.copy_(w.roll(1, dims=1).clone()))
    assert flags(model=permuted) == {"copying_score_one"}
    copying_layer0 = _edit(_soft(20, 41), "blocks.0.attn.W_O",    # block 0 writes `out` too
                           lambda w: w[0, : lay.n_tokens, lay.out].copy_(torch.eye(lay.n_tokens)))
    assert flags(random_model=copying_layer0) == {"random_induction_low", "random_previous_low",
                                                 "random_copying_low"}
    tokens = detectors.repeated_random_tokens(1, 20, 20, seed=0)
    assert tokens.shape == (1, 41)


def test_bad_arguments_name_themselves(tmp_path) -> None:
    with pytest.raises(ValueError, match="expected"):
        ce.check_cat_sat_literal(expected="dog")
    with pytest.raises(ValueError, match="text"):
        ce.check_cat_sat_literal(text="")
    with pytest.raises(ValueError, match="attention"):
        ci.plot_patterns(str(tmp_path), "linear")
