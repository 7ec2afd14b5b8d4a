"""The six induction-family checks (verify/claims/induction.py, induction_examples.py), pinned so
that a changed default, size, rounding or comparison fails a test (mutation testing, issue 13).

Two kinds of test: the evidence of every check on its default input, number by number (a check
is one test here, so a mutation tool pairs each check with its own golden test); and inputs
broken for exactly one condition that the other test files do not break yet."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from constructions import induction, one_layer_induction, transformer
from constructions.transformer import Transformer
from verify.claims import induction as ci
from verify.claims import induction_examples as ce
from verify.registry import derive_verdict
from verify.sequences import random_sequences

REL = 1e-9   # float evidence: the same arithmetic, so equal up to summation order

NOTE = "the head output is x_{i-1}, but it lands on x_i: layer 2 sees their sum"
LOWER = ("Sanford, Hsu, Telgarsky 2024 (arXiv 2408.14332): one layer needs "
         "heads*width*precision = Omega(n)")
DEFAULTS: dict[str, tuple[Callable, bool, dict]] = {
    "previous_token_literal": (ci.check_previous_token_literal, False, {
        "accuracy": 0.4342, "always_bos_baseline": 0.3847, "accuracy_where_target_not_bos": 0.5702,
        "positions": 4284, "layer1_output_is_previous_token": True, "note": NOTE}),
    "previous_token_restated": (ci.check_previous_token_restated, True, {
        "pattern_is_shift": True, "prev_is_previous_token": True, "integer_certificate": True,
        "hard_sequences": 364, "softmax_vocab_size": 8, "softmax_beta": math.log(8 * 32), "softmax_n_ctx": 32,
        "certified_beta": True, "max_mass_off_previous": 0.007751938213736209,
        "bound_delta_1": 0.007812500232830645, "ov_token_to_previous": True,
        "ov_zero_elsewhere": True}),
    "induction_literal": (ci.check_induction_literal, True, {
        "attends_to_a_successor_key": True, "predicts_a_successor": True, "judged_positions": 738,
        "share_equal_to_most_recent_successor": 0.9228, "attention": "hard"}),
    # the default soft model; a smaller hard model, SymPy sample and threshold case than the
    # defaults (tests/test_evidence_schema.py runs those), to stay fast
    "induction_restated": (lambda: ci.check_induction_restated(
        hard_models=[induction.build_induction_model(2, 5, "hard")], sympy_sample=2,
        threshold_case=(2, 4)), True, {
        "exact_all_sequences": True, "integer_certificate": True, "sequences": 31,
        "sympy_sample": 2, "sympy_exact": True, "softmax_vocab_size": 4, "softmax_beta": math.log(8 * 24),
        "softmax_n_ctx": 24, "softmax_sequences": 729, "correct": True, "wrong_positions": 0,
        "max_mass_1": 0.010309279071286204, "max_mass_2": 0.018864109354191916,
        "min_margin": 0.9622717812916163, "mass_1_within": True, "mass_2_within": True,
        "margin_within": True, "certified_beta": True, "bound_delta_1": 0.01041666740252648,
        "bound_delta_2": 0.07254664415552671, "bound_margin": 0.8549067116889466,
        "threshold_case": [2, 4], "exhaustive_threshold": 1.7917338638249563,
        "lower_bound": math.log(5), "beta_star": math.log(32),
        "threshold_above_lower_bound": True, "threshold_below_beta_star": True,
        "first_failing_family": {"sequence": [2, 0, 0, 1], "position": 3,
                                 "family": "no match vs non-match", "target_key": 0,
                                 "rival_key": 3}}),
    "two_layers_literal": (ci.check_two_layers_literal, False, {
        "counterexample_solves_task": True, "sequences": 433,
        "sizes": [{"V": 1, "N": 6, "heads": 6, "d_mlp": 5}, {"V": 2, "N": 6, "heads": 6, "d_mlp": 20},
                  {"V": 3, "N": 6, "heads": 6, "d_mlp": 45}]}),
    "two_layers_restated": (ci.check_two_layers_restated, True, {
        "layer1_keys_blind_to_previous_token": True, "layer2_keys_see_previous_token": True,
        "one_layer_model_exact": True, "integer_certificate": True, "one_layer_sequences": 433,
        "lower_bound": LOWER}),
    "cat_sat_literal": (ce.check_cat_sat_literal, True, {
        "tokens": ["<bos>", "the", "cat", "sat", "on", "the", "mat", ".", "the", "cat"],
        "query_position": 9, "attended_position": 3, "attended_word": "sat",
        "layer1_moved_there": "cat", "prediction": "sat", "attention_weight": 1.0}),
    "cat_sat_restated": (ce.check_cat_sat_restated, True, {
        "target_key": 3, "target_word": "sat", "weight_on_target": 1.0,
        "bound": 0.8867811259780584, "certified_beta": True, "hard_row_one_hot": True}),
    "ideal_literal": (ce.check_ideal_literal, False, {
        "given_nonzero": [[4, 1], [5, 2], [6, 3]],
        "reference_nonzero": [[4, 1], [5, 2], [6, 3], [7, 4]]}),
    "ideal_restated": (ce.check_ideal_restated, True, {
        "ours_nonzero": [[4, 1], [5, 2], [6, 3], [7, 4]], "rows_on_bos": [0, 1, 2, 3],
        "rows_without_target": [0, 1, 2, 3]}),
    "detector_literal": (ce.check_detector_literal, False, {
        "on_induction_head": "None", "on_random_head": "None"}),
    "detector_restated": (ce.check_detector_restated, True, {
        "induction_score_at_least_bound": True, "previous_score_at_least_bound": True,
        "copying_score_one": True, "random_induction_low": True, "random_previous_low": True,
        "random_copying_low": True, "induction_score": 1.0,
        "previous_token_score": 0.9940149211678773, "copying_score": 1.0,
        "random_induction_max": 0.04122693242398304, "random_previous_max": 0.08891832516402681,
        "random_copying_max": 0.11652723631330673, "floor_induction": 0.944615379145053,
        "floor_previous": 0.993902438937992}),
}


def _same(got, want) -> bool:  # noqa: ANN001
    """Equal, floats up to `REL`; bools stay bools and ints stay ints (True != 1 here)."""
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, float):
        return isinstance(got, float) and got == pytest.approx(want, rel=REL, abs=1e-15)
    if isinstance(want, dict):
        return isinstance(got, dict) and set(got) == set(want) and all(
            _same(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(
            _same(g, w) for g, w in zip(got, want))
    return type(got) is type(want) and got == want


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_default_evidence_number_by_number(name: str) -> None:
    check, holds, evidence = DEFAULTS[name]
    found = check()
    assert found.holds is holds
    bad = {k: found.evidence.get(k) for k in set(evidence) | set(found.evidence)
           if not _same(found.evidence.get(k), evidence.get(k))}
    assert not bad, bad


# --- the default inputs each check builds -------------------------------------------------

def test_default_models_of_the_two_layer_claim() -> None:
    one = ci.default_one_layer()
    assert [(m.cfg.d_vocab - 1, m.cfg.n_ctx) for m in one] == [(1, 6), (2, 6), (3, 6)]
    first = ci.default_first_layers()
    assert all(m.cfg.n_layers == 1 for m in one + first)    # Lemma 2 is about block 0 alone
    assert [(m.cfg.d_vocab, m.cfg.n_ctx, m.cfg.n_heads, m.cfg.d_model, m.cfg.d_head, m.cfg.d_mlp,
             m.cfg.act_fn) for m in first] == [
        (3, 4, 4, 25, 3, 12, "relu"), (3, 4, 3, 8, 4, None, None), (3, 4, 3, 8, 4, 8, "relu"),
        (3, 4, 3, 8, 4, None, None), (3, 4, 3, 8, 4, 8, "relu")]
    for seed, model in enumerate(first[1:]):
        want = transformer.random_weights(model.cfg, seed=seed)
        assert all(torch.equal(model.weights()[k], w) for k, w in want.items())
    assert all(ci.key_blindness(m) for m in first)


def test_previous_token_literal_judges_the_tokens_it_is_given() -> None:
    ours = induction.build_induction_model(4, 12, "hard")
    tokens = random_sequences(4, 12, 7)
    found = ci.check_previous_token_literal(model=ours, tokens=tokens)
    assert found.holds and found.evidence["positions"] == 7 * 12
    assert found.evidence["accuracy"] == 1.0 and found.evidence["accuracy_where_target_not_bos"] == 1.0
    section = ci.check_previous_token_literal(tokens=tokens[:1])
    assert section.evidence["positions"] == 12


def test_two_layers_literal_refusal_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^one_layer: every model must have exactly one layer$"):
        ci.check_two_layers_literal([induction.build_induction_model(2, 4, "hard")])
    flat = one_layer_induction.build_one_layer_induction(2, 4)
    found = ci.check_two_layers_literal([flat], max_len=3)
    assert found.evidence["sequences"] == 1 + 2 + 4 and not found.holds
    assert derive_verdict(found.holds, True) == "corrected"


def test_induction_literal_share_divides_by_the_judged_positions() -> None:
    """V = 1: lengths 2 and 3 judge 0 and 1 positions; with none the share is 0, not an error."""
    one = induction.build_section_variant(1, 3, "match_only")
    none = ci.check_induction_literal(one, max_len=2)
    assert none.holds and none.evidence["judged_positions"] == 0
    assert none.evidence["share_equal_to_most_recent_successor"] == 0.0
    single = ci.check_induction_literal(one, max_len=3)
    assert single.evidence["judged_positions"] == 1
    assert single.evidence["share_equal_to_most_recent_successor"] == 1.0


# --- bounds at their edges, through the checks themselves ------------------------------------

def _search(threshold: float, lower: float = 2.0, star: float = 4.0):  # noqa: ANN202
    """A stand-in for `beta_threshold.threshold` returning a chosen bracket."""
    def fake(V, N, *, build, tol):  # noqa: ANN001, ANN202
        assert (V, N, tol) == (2, 4, 1e-3)
        return {"threshold": threshold, "lower_bound": lower, "beta_star": star,
                "failures_just_below": {"shortest_example": None}}
    return fake


@pytest.mark.parametrize("threshold, above, below", [
    (2.0, True, True), (2.0 - 1e-12, False, True), (4.0, True, True), (4.0 + 1e-12, True, False)])
def test_induction_restated_threshold_bounds_are_inclusive(monkeypatch, threshold, above,
                                                            below) -> None:
    monkeypatch.setattr(ci.beta_threshold, "threshold", _search(threshold))
    found = ci.check_induction_restated(hard_models=[induction.build_induction_model(1, 3, "hard")],
                                        sympy_sample=0, threshold_case=(2, 4))
    assert found.evidence["threshold_above_lower_bound"] is above
    assert found.evidence["threshold_below_beta_star"] is below
    assert found.holds is (above and below)
    assert found.evidence["exhaustive_threshold"] == threshold


@pytest.fixture(scope="module")
def detector_models() -> tuple[Transformer, Transformer]:
    model = induction.build_induction_model(20, 41, "softmax")
    return model, ce._random_model(model.cfg)


def _scores(monkeypatch, model, ind=1.0, prev=1.0, copy=1.0, r_ind=0.0, r_prev=0.0,  # noqa: ANN001
            r_copy=0.0) -> dict:
    """check_detector_restated with each detector score replaced by a chosen number."""
    monkeypatch.setattr(ce.detectors, "prefix_matching_score",
                        lambda m, layer, head, tokens: ind if m is model else r_ind)
    monkeypatch.setattr(ce.detectors, "previous_token_score",
                        lambda m, layer, head, tokens: prev if m is model else r_prev)
    monkeypatch.setattr(ce.detectors, "head_copying_score",
                        lambda m, layer, head=0: copy if m is model else r_copy)
    return ce.check_detector_restated(model, object())


def test_detector_restated_each_bound_at_its_edge(monkeypatch, detector_models) -> None:
    model, _ = detector_models
    b = induction.mass_bounds(model.beta, model.cfg.n_ctx)
    tol = ce.COPY_TOL
    cases = [  # (scores, the one condition that fails or None)
        ({"ind": 1 - b["delta_2"]}, None), ({"ind": 1 - b["delta_2"] - 1e-9},
                                            "induction_score_at_least_bound"),
        ({"prev": 1 - b["delta_1"]}, None), ({"prev": 1 - b["delta_1"] - 1e-9},
                                             "previous_score_at_least_bound"),
        ({"copy": 1 - tol}, None), ({"copy": 1 + tol / 2}, None),   # 1 - tol: at the bound
        ({"copy": 1 - 2 * tol}, "copying_score_one"), ({"copy": 1 + 2 * tol}, "copying_score_one"),
        ({"r_ind": ce.RANDOM_CEILING - 1e-9}, None), ({"r_ind": ce.RANDOM_CEILING},
                                                      "random_induction_low"),
        ({"r_prev": ce.RANDOM_CEILING - 1e-9}, None), ({"r_prev": ce.RANDOM_CEILING},
                                                       "random_previous_low"),
        ({"r_copy": ce.RANDOM_COPY_CEILING - 1e-9}, None),
        ({"r_copy": -(ce.RANDOM_COPY_CEILING - 1e-9)}, None),
        ({"r_copy": ce.RANDOM_COPY_CEILING}, "random_copying_low"),
        ({"r_copy": -ce.RANDOM_COPY_CEILING}, "random_copying_low")]
    for scores, failing in cases:
        found = _scores(monkeypatch, model, **scores)
        flags = {k for k, v in found.evidence.items() if v is False}
        assert flags == ({failing} if failing else set()), (scores, flags)
        assert found.holds is (failing is None)
    assert (ce.COPY_TOL, ce.RANDOM_CEILING, ce.RANDOM_COPY_CEILING) == (1e-12, 0.5, 0.9)
    found = _scores(monkeypatch, model, ind=0.97, prev=0.995, copy=0.5, r_ind=0.1, r_prev=0.2,
                    r_copy=-0.3)
    ev = found.evidence
    assert (ev["induction_score"], ev["previous_token_score"], ev["copying_score"]) == (
        0.97, 0.995, 0.5)
    assert (ev["random_induction_max"], ev["random_previous_max"], ev["random_copying_max"]) == (
        0.1, 0.2, 0.3)
    assert ev["floor_induction"] == 1 - b["delta_2"] and ev["floor_previous"] == 1 - b["delta_1"]


def test_detector_restated_reads_both_random_layers(monkeypatch, detector_models) -> None:
    """The random model's maxima run over its layers 0 and 1: a high score in either shows."""
    model, _ = detector_models
    for layer in (0, 1):
        monkeypatch.setattr(ce.detectors, "prefix_matching_score",
                            lambda m, la, h, t, layer=layer: 1.0 if m is model or la == layer
                            else 0.0)
        monkeypatch.setattr(ce.detectors, "previous_token_score",
                            lambda m, la, h, t, layer=layer: 1.0 if m is model or la == layer
                            else 0.0)
        monkeypatch.setattr(ce.detectors, "head_copying_score",
                            lambda m, la, h=0, layer=layer: 1.0 if m is model or la == layer
                            else 0.0)
        ev = ce.check_detector_restated(model, object()).evidence
        assert (ev["random_induction_max"], ev["random_previous_max"],
                ev["random_copying_max"]) == (1.0, 1.0, 1.0)


def test_detector_restated_tokens_and_seed(monkeypatch, detector_models) -> None:
    """The repeated sequences: 40 of them, half (n_ctx - 1) / 2, the model's vocabulary, the
    seed given; the same tokens for every score."""
    model, _ = detector_models
    seen = []

    def record(m, layer, head, tokens):  # noqa: ANN001, ANN202
        seen.append(tokens)
        return 1.0 if m is model else 0.0

    monkeypatch.setattr(ce.detectors, "prefix_matching_score", record)
    monkeypatch.setattr(ce.detectors, "previous_token_score", record)
    monkeypatch.setattr(ce.detectors, "head_copying_score", lambda m, la, h=0: float(m is model))
    assert ce.check_detector_restated(model, object(), seed=5).holds
    want = ce.detectors.repeated_random_tokens(40, 20, 20, seed=5)
    assert len(seen) == 6 and all(torch.equal(t, want) for t in seen)


# --- worked_example_2.cat_sat on other texts ---------------------------------------------

def test_cat_sat_when_nothing_matches_bos_is_the_target() -> None:
    """'a b c': the last word occurred nowhere before, so the target key is BOS (0) and every
    word read there is '<bos>' (the BOS id is the vocabulary size, not a word)."""
    lit = ce.check_cat_sat_literal(text="a b c", expected="b")
    assert not lit.holds
    assert lit.evidence == {"tokens": ["<bos>", "a", "b", "c"], "query_position": 3,
                            "attended_position": 0, "attended_word": "<bos>",
                            "layer1_moved_there": "<bos>", "prediction": "<bos>",
                            "attention_weight": 0.93315}
    res = ce.check_cat_sat_restated(text="a b c", expected="b")
    assert not res.holds and res.evidence["target_key"] == 0
    assert res.evidence["target_word"] == "<bos>" and res.evidence["certified_beta"] is True


def test_cat_sat_literal_means_the_first_occurrence_of_expected() -> None:
    """'sat cat sat cat': the head attends to the LATEST 'sat' (key 3), the literal check asks
    for the first (position 1), so it fails while the restatement holds."""
    lit = ce.check_cat_sat_literal(text="sat cat sat cat", expected="sat")
    assert not lit.holds and lit.evidence["attended_position"] == 3
    assert lit.evidence["prediction"] == "sat" and lit.evidence["layer1_moved_there"] == "cat"
    assert ce.check_cat_sat_restated(text="sat cat sat cat", expected="sat").holds
    with pytest.raises(ValueError, match=r"^expected must be a word of text, got 'dog'$"):
        ce.check_cat_sat_restated(expected="dog")


# --- every length counts, not only the longest ----------------------------------------------

class _BrokenAtLength:
    """``inner`` except on sequences of one length, where ``what`` is changed: the logits
    ("logits": rolled by one class), the block-1 / block-0 pattern ("pattern1" / "pattern0":
    rolled by one key) or the residual stream after block 0 ("resid": plus 1/2). A causal model
    cannot do this (its prefixes agree with it), so only a check that reads every length sees
    it."""

    def __init__(self, inner, length: int, what: str) -> None:  # noqa: ANN001
        self._inner, self._length, self._what = inner, length, what

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._inner, name)

    def __call__(self, tokens):  # noqa: ANN001, ANN204
        return self.run_with_cache(tokens)[0]

    def run_with_cache(self, tokens):  # noqa: ANN001, ANN201
        logits, cache = self._inner.run_with_cache(tokens)
        if tokens.shape[1] != self._length:
            return logits, cache
        cache = dict(cache)
        if self._what == "logits":
            logits = logits.roll(1, dims=-1)
        elif self._what == "resid":
            cache["blocks.0.hook_resid_post"] = cache["blocks.0.hook_resid_post"] + 0.5
        else:
            key = f"blocks.{self._what[-1]}.attn.hook_pattern"
            cache[key] = cache[key].roll(1, dims=-1)
        return logits, cache


@pytest.mark.parametrize("what, failing", [("logits", "predicts_a_successor"),
                                           ("pattern1", "attends_to_a_successor_key")])
def test_induction_literal_reads_every_length(what, failing) -> None:
    model = _BrokenAtLength(induction.build_section_variant(3, 6, "match_only"), 4, what)
    found = ci.check_induction_literal(model)
    assert not found.holds and {k for k, v in found.evidence.items() if v is False} == {failing}


@pytest.mark.parametrize("what, failing", [
    ("pattern0", {"pattern_is_shift"}),
    ("resid", {"prev_is_previous_token", "integer_certificate"})])
def test_previous_token_restated_reads_every_length(what, failing) -> None:
    model = _BrokenAtLength(induction.build_induction_model(3, 6, "hard"), 3, what)
    found = ci.check_previous_token_restated(hard=model)
    assert not found.holds and {k for k, v in found.evidence.items() if v is False} == failing


def test_two_layer_solves_reads_every_length_and_model() -> None:
    flat = one_layer_induction.build_one_layer_induction(2, 6)
    broken = _BrokenAtLength(flat, 3, "logits")
    found = ci.check_two_layers_restated(one_layer=[broken])
    assert not found.holds and found.evidence["one_layer_model_exact"] is False
    found = ci.check_two_layers_restated(one_layer=[broken, flat])     # the last one is fine
    assert not found.holds and found.evidence["one_layer_model_exact"] is False
    halved = _BrokenAtLength(flat, 3, "resid")
    found = ci.check_two_layers_restated(one_layer=[halved, flat])
    assert found.evidence["one_layer_model_exact"] and not found.evidence["integer_certificate"]
    assert ci.check_two_layers_literal([broken, flat]).holds


def test_check_exact_reads_every_length_and_model() -> None:
    from verify.induction_certificate import check_exact
    hard = induction.build_induction_model(2, 5, "hard")
    got = check_exact([_BrokenAtLength(hard, 3, "logits"), hard], sympy_sample=0, max_len=5)
    assert got["exact_all_sequences"] is False and got["integer_certificate"] is True
    got = check_exact([_BrokenAtLength(hard, 3, "resid"), hard], sympy_sample=0, max_len=5)
    assert got["exact_all_sequences"] is True and got["integer_certificate"] is False
    wrong_mirror = induction.build_induction_model(2, 5, "hard")
    wrong_mirror.set_weights({"unembed.W_U": 2 * wrong_mirror.weights()["unembed.W_U"]})
    got = check_exact([_BrokenAtLength(wrong_mirror, 99, "logits"), hard], sympy_sample=0,
                      max_len=5)
    assert got["exact_all_sequences"] is False


def test_cat_sat_expected_position_with_a_word_spelled_like_bos() -> None:
    """A text word '<bos>' makes the display names of BOS and a word collide: the position the
    head should attend to is still 0 when nothing matches ('x <bos>': the prediction is BOS) and
    the first occurrence AFTER BOS otherwise ('a <bos> a': key 2)."""
    assert ce.check_cat_sat_literal(text="x <bos>", expected="<bos>").holds
    found = ce.check_cat_sat_literal(text="a <bos> a", expected="<bos>")
    assert found.holds and found.evidence["attended_position"] == 2


def test_detector_literal_reports_what_the_detector_returned() -> None:
    def offset(A: torch.Tensor) -> bool:
        half = (A.shape[0] - 1) // 2
        rows = torch.arange(half + 1, A.shape[0])
        return bool(A[rows, rows - half + 1].mean() > 0.5)

    found = ce.check_detector_literal(detector=offset)
    assert found.holds and found.evidence == {"on_induction_head": "True",
                                              "on_random_head": "False"}


def test_detector_restated_random_baseline_is_drawn_with_the_seed_given() -> None:
    """The default random model is drawn with ``seed``, not with the module's SEED."""
    model = induction.build_induction_model(20, 41, "softmax")
    drawn = ce.check_detector_restated(model, seed=5).evidence
    given = ce.check_detector_restated(model, ce._random_model(model.cfg, 5), seed=5).evidence
    other = ce.check_detector_restated(model, ce._random_model(model.cfg, ce.SEED), seed=5).evidence
    assert drawn == given and drawn["random_induction_max"] != other["random_induction_max"]
