"""Claims of Theorem 2.1 (proofs/induction.md): Layer 1, Layer 2, and "two attention layers".

Each claim has a literal check (the section's construction or sentence as it stands) and a
restated check (proofs/induction.md); every check takes what it judges as an argument with a
default, so tests can hand it a broken construction. The mathematics lives elsewhere:
`verify.sequences` (sequences, target keys), `verify.induction_certificate` (exact runs, bounds),
`verify.beta_threshold` (the searched temperature threshold), `verify.induction_plots` (display).
Worked Example 2 and Coding Demo 1 are in `verify.claims.induction_examples`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from constructions import circuits, induction, one_layer_induction, transformer
from constructions.induction import InductionModel
from constructions.transformer import Transformer
from verify import beta_threshold, induction_plots
from verify.induction_certificate import (
    at_most,
    check_exact,
    integer_certificate,
    off_target_mass,
    softmax_report,
)
from verify.registry import Finding, claim
from verify.sequences import adversarial_sequences, all_sequences, previous_index, random_sequences

EXACT_VOCABS = (1, 2, 3, 4)   # exhaustive exact check: every vocabulary size up to 4 ...
EXACT_LEN = 6                 # ... and every length up to 6
SYMPY_SAMPLE = 20             # of those sequences, also run through the SymPy mirror
THRESHOLD_CASE = (2, 8)       # (V, N) whose exact threshold the restated check searches


def _eye_block(matrix: Tensor, rows: slice, cols: slice) -> tuple[bool, bool]:
    """(matrix[rows, cols] is the identity, matrix is zero outside that block)."""
    block = matrix[rows][:, cols]
    eye = bool(torch.equal(block, torch.eye(block.shape[0], dtype=matrix.dtype)))
    return eye, float(matrix.abs().sum() - block.abs().sum()) == 0.0


# --- induction.previous_token_head ---------------------------------------------------------

def check_previous_token_literal(model: InductionModel | None = None,
                                 tokens: Tensor | None = None) -> Finding:
    """The section's Layer 1 (W_QK on positions, W_OV = I) serves its Layer 2.

    Made precise: with Layer 1's OV the identity on the token subspace, position i holds
    e(x_i) + e(x_{i-1}) in one subspace; Layer 2 is ours but reads that summed subspace
    (`build_section_variant(..., "identity_ov")`). The statement holds when this model predicts
    the induction target at every position of ``tokens`` (default: 300 random and the
    adversarial sequences, V = 4, N = 12, hard attention). Evidence sets the accuracy beside the
    always-BOS baseline (the share of targets that are BOS)."""
    model = model or induction.build_section_variant(4, 12, "identity_ov", "hard")
    V, N = model.layout.vocab_size, model.cfg.n_ctx
    tokens = tokens if tokens is not None else torch.cat(
        [random_sequences(V, N, 300), adversarial_sequences(V, N, n_random=20)])
    logits, cache = model.run_with_cache(tokens)
    target = induction.induction_targets(tokens, V)
    right = logits.argmax(-1) == target
    head_out = cache["blocks.0.attn.hook_z"][:, :, 0] @ model.weights()["blocks.0.attn.W_O"][0]
    moved = F.one_hot(tokens[:, previous_index(tokens.shape[1])], model.layout.n_tokens)
    head_moves_previous = bool(torch.equal(head_out[..., model.layout.tok], moved.to(logits.dtype)))
    return Finding(bool(right.all()), {
        "accuracy": round(float(right.double().mean()), 4),
        "always_bos_baseline": round(float((target == V).double().mean()), 4),
        "accuracy_where_target_not_bos": round(float(right[target != V].double().mean()), 4),
        "positions": int(target.numel()),
        "layer1_output_is_previous_token": head_moves_previous,
        "note": "the head output is x_{i-1}, but it lands on x_i: layer 2 sees their sum"})


def check_previous_token_restated(hard: InductionModel | None = None,
                                  soft: InductionModel | None = None, *,
                                  max_len: int = EXACT_LEN) -> Finding:
    """Our Layer 1: (hard) on every sequence up to ``max_len`` the pattern is the shift and the
    `prev` coordinates are exactly e(x_{i-1}), with the integer certificate; (softmax, beta >=
    beta*) the mass off i - 1 is at most delta_1; W_OV maps `tok` onto `prev` (identity block)
    and is zero elsewhere."""
    hard = hard or induction.build_induction_model(3, EXACT_LEN, "hard")
    soft = soft or induction.build_induction_model(8, 32, "softmax")
    lay, V = hard.layout, hard.layout.vocab_size
    shift_ok, prev_ok, certified, n_seqs = True, True, True, 0
    for length in range(1, min(max_len, hard.cfg.n_ctx) + 1):
        tokens = all_sequences(V, length)
        n_seqs += len(tokens)
        _, cache = hard.run_with_cache(tokens)
        shift = F.one_hot(previous_index(length), length).to(torch.float64)
        want = F.one_hot(tokens[:, previous_index(length)], lay.n_tokens).to(torch.float64)
        shift_ok &= bool(torch.equal(cache["blocks.0.attn.hook_pattern"][:, 0],
                                     shift.expand(len(tokens), -1, -1)))
        prev_ok &= bool(torch.equal(cache["blocks.0.hook_resid_post"][..., lay.prev], want))
        certified &= integer_certificate(cache)
    N = soft.cfg.n_ctx
    tokens = torch.cat([random_sequences(soft.layout.vocab_size, N, 200),
                        adversarial_sequences(soft.layout.vocab_size, N, n_random=20)])
    _, cache = soft.run_with_cache(tokens)
    mass = float(off_target_mass(cache["blocks.0.attn.hook_pattern"][:, 0],
                                 previous_index(N).expand(len(tokens), -1)).max())
    bound = induction.mass_bounds(soft.beta, N)
    ov_eye, ov_rest_zero = _eye_block(circuits.ov(hard, 0, 0), lay.tok, lay.prev)
    mass_ok = at_most(mass, bound["delta_1"])
    holds = (shift_ok and prev_ok and certified and bool(bound["certified"]) and mass_ok
             and ov_eye and ov_rest_zero)
    return Finding(holds, {
        "pattern_is_shift": shift_ok, "prev_is_previous_token": prev_ok,
        "integer_certificate": certified, "hard_sequences": n_seqs,
        "softmax_vocab_size": soft.layout.vocab_size, "softmax_beta": soft.beta,
        "softmax_n_ctx": N, "certified_beta": bound["certified"],
        "max_mass_off_previous": mass, "bound_delta_1": bound["delta_1"],
        "ov_token_to_previous": ov_eye, "ov_zero_elsewhere": ov_rest_zero})


previous_token_head = claim(
    "induction.previous_token_head", source="section 2 / Theorem 2.1",
    statement="layer 1 moves x_{i-1} to position i (W_QK on positions, W_OV = I)")
previous_token_head.literal(check_previous_token_literal)
previous_token_head.restated(check_previous_token_restated)


# --- induction.induction_head --------------------------------------------------------------

def check_induction_literal(model: InductionModel | None = None, *, max_len: int = EXACT_LEN
                            ) -> Finding:
    """The section's Layer 2: score A W_QK A^T alone (match only), copying x_{j+1}.

    Made precise: hard attention (the section gives no temperature; "designed" W_QK read as
    its large-scale limit) on our Layer 1, every sequence up to ``max_len``; judged only where
    the section promises something, i.e. at positions T whose token occurred before: the row's
    largest weight lies on a key j+1 with x_j = x_T, and the prediction is a token that followed
    an earlier occurrence of x_T. Positions without an earlier occurrence are not judged."""
    model = model or induction.build_section_variant(3, EXACT_LEN, "match_only", "hard")
    V = model.layout.vocab_size
    attends_ok = predicts_ok = True
    judged = agrees_with_most_recent = 0
    for length in range(2, min(max_len, model.cfg.n_ctx) + 1):
        tokens = all_sequences(V, length)
        logits, cache = model.run_with_cache(tokens)
        n = length
        earlier = torch.arange(n)[None, :] < torch.arange(n)[:, None]           # [t, j]: j < t
        match = (tokens[:, :, None] == tokens[:, None, :]) & earlier             # x_j = x_t
        has = match.any(-1)                                                     # [batch, t]
        keys = torch.zeros_like(match)
        keys[:, :, 1:] = match[:, :, :-1]                                       # key j+1
        top = cache["blocks.1.attn.hook_pattern"][:, 0].argmax(-1)              # [batch, t]
        pred = logits.argmax(-1)
        successor = keys & (tokens[:, None, :] == pred[:, :, None])              # x_{j+1} = pred
        attends_ok &= bool(keys.gather(-1, top[..., None])[..., 0][has].all())
        predicts_ok &= bool(successor.any(-1)[has].all())
        judged += int(has.sum())
        target = induction.induction_targets(tokens, V)
        agrees_with_most_recent += int((pred == target)[has].sum())
    return Finding(attends_ok and predicts_ok, {
        "attends_to_a_successor_key": attends_ok, "predicts_a_successor": predicts_ok,
        "judged_positions": judged,
        "share_equal_to_most_recent_successor": round(agrees_with_most_recent / max(judged, 1), 4),
        "attention": model.cfg.attention})


def check_induction_restated(hard_models: list[Transformer] | None = None,
                             soft: InductionModel | None = None, *,
                             sympy_sample: int = SYMPY_SAMPLE,
                             build: beta_threshold.Builder = induction.build_induction_model,
                             threshold_case: tuple[int, int] = THRESHOLD_CASE) -> Finding:
    """Our theorem: hard models exact on every sequence up to length 6 (integer certificate,
    SymPy sample); the softmax model at beta >= beta* right on adversarial and random sequences
    with masses and margin within the proved bounds; and the exhaustively searched threshold of
    ``build`` at ``threshold_case`` lies between the proved lower bound ln(2N-3) and beta*."""
    hard_models = hard_models or [induction.build_induction_model(V, EXACT_LEN, "hard")
                                  for V in EXACT_VOCABS]
    exact_part = check_exact(hard_models, sympy_sample=sympy_sample, max_len=EXACT_LEN)
    soft = soft or induction.build_induction_model(4, 24, "softmax")
    V, N = soft.layout.vocab_size, soft.cfg.n_ctx
    tokens = torch.cat([adversarial_sequences(V, N), random_sequences(V, N, 300)])
    report = softmax_report(soft, tokens)
    bounds = report.pop("bounds")
    search = beta_threshold.threshold(*threshold_case, build=build, tol=1e-3)
    above_lower = search["threshold"] >= search["lower_bound"]
    below_star = search["threshold"] <= search["beta_star"]
    holds = (exact_part["exact_all_sequences"] and exact_part["integer_certificate"]
             and exact_part["sympy_exact"] and report["correct"] and report["mass_1_within"]
             and report["mass_2_within"] and report["margin_within"] and bounds["certified"]
             and above_lower and below_star)
    return Finding(holds, {
        **exact_part, "softmax_vocab_size": V, "softmax_beta": soft.beta, "softmax_n_ctx": N,
        "softmax_sequences": len(tokens), **report, "certified_beta": bounds["certified"],
        "bound_delta_1": bounds["delta_1"], "bound_delta_2": bounds["delta_2"],
        "bound_margin": bounds["margin"],
        "threshold_case": list(threshold_case), "exhaustive_threshold": search["threshold"],
        "lower_bound": search["lower_bound"], "beta_star": search["beta_star"],
        "threshold_above_lower_bound": above_lower, "threshold_below_beta_star": below_star,
        "first_failing_family": search["failures_just_below"]["shortest_example"]})


induction_head = claim("induction.induction_head", source="section 2 / Theorem 2.1",
                       statement="layer 2 attends to j+1 with x_j = x_T and copies x_{j+1}")
induction_head.literal(check_induction_literal)
induction_head.restated(check_induction_restated)


# --- induction.two_layers_required ---------------------------------------------------------

def key_blindness(model: Transformer) -> bool:
    """Lemma 2's instance: [BOS, 0, 1, 0] vs [BOS, 1, 1, 0] give equal block-0 scores from query
    3 to keys 0 and 2 in every head, so no block-0 head can attend to 2 (the induction target)
    in the first and to 0 (BOS, no match) in the second."""
    V = model.cfg.d_vocab - 1
    tokens = torch.tensor([[V, 0, 1, 0], [V, 1, 1, 0]])
    _, cache = model.run_with_cache(tokens)
    scores = cache["blocks.0.attn.hook_attn_scores"][:, :, 3]  # [batch, head, key]
    return bool(torch.equal(scores[0][:, [0, 2]], scores[1][:, [0, 2]]))


def default_one_layer() -> list[Transformer]:
    return [one_layer_induction.build_one_layer_induction(V, EXACT_LEN) for V in (1, 2, 3)]


def default_first_layers() -> list[Transformer]:
    """Random one-block models (with and without MLP) and the one-layer construction."""
    models: list[Transformer] = [one_layer_induction.build_one_layer_induction(2, 4)]
    for seed in range(4):
        cfg = transformer.Config(n_layers=1, n_heads=3, d_model=8, d_head=4, d_vocab=3,
                                 n_ctx=4, d_mlp=8 if seed % 2 else None,
                                 act_fn="relu" if seed % 2 else None)
        models.append(Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed)))
    return models


def _solves(models: list[Transformer], max_len: int) -> tuple[bool, bool, int]:
    """(every model predicts every target up to max_len, integer certificate, sequences)."""
    right, certified, count = True, True, 0
    for model in models:
        V = model.cfg.d_vocab - 1
        for length in range(1, min(max_len, model.cfg.n_ctx) + 1):
            tokens = all_sequences(V, length)
            logits, cache = model.run_with_cache(tokens)
            right &= bool((logits.argmax(-1) == induction.induction_targets(tokens, V)).all())
            certified &= integer_certificate(cache)
            count += len(tokens)
    return right, certified, count


def check_two_layers_literal(one_layer: list[Transformer] | None = None, *,
                             max_len: int = EXACT_LEN) -> Finding:
    """"An induction head requires at least two attention layers", read as a statement about
    the task: no model with ONE attention layer predicts every induction target. Tested against
    the counterexample handed in (default: one attention layer + ReLU MLP, V = 1, 2, 3, N = 6):
    the statement holds when some given one-layer model gets some target wrong."""
    one_layer = one_layer or default_one_layer()
    if any(m.cfg.n_layers != 1 for m in one_layer):
        raise ValueError("one_layer: every model must have exactly one layer")
    right, _, count = _solves(one_layer, max_len)
    return Finding(not right, {"counterexample_solves_task": right, "sequences": count,
                               "sizes": [{"V": m.cfg.d_vocab - 1, "N": m.cfg.n_ctx,
                                          "heads": m.cfg.n_heads, "d_mlp": m.cfg.d_mlp}
                                         for m in one_layer]})


def check_two_layers_restated(one_layer: list[Transformer] | None = None,
                              first_layers: list[Transformer] | None = None,
                              two_layer: Transformer | None = None, *,
                              max_len: int = EXACT_LEN) -> Finding:
    """(a) Lemma 2 on ``first_layers``: block-0 keys cannot see x_{j-1}; (b) a second layer's
    keys can (``two_layer``'s block-1 keys differ on Lemma 2's pair); (c) Proposition 3: the
    one-layer models predict every target exactly (integer certificate)."""
    one_layer = one_layer or default_one_layer()
    first_layers = first_layers or default_first_layers()
    two_layer = two_layer or induction.build_induction_model(2, 4, "hard")
    blind = all(key_blindness(m) for m in first_layers)
    V = two_layer.cfg.d_vocab - 1
    _, cache = two_layer.run_with_cache(torch.tensor([[V, 0, 1, 0], [V, 1, 1, 0]]))
    sees = not torch.equal(cache["blocks.1.attn.hook_k"][0, 2],   # [batch, pos, head, d_head]
                           cache["blocks.1.attn.hook_k"][1, 2])
    right, certified, count = _solves(one_layer, max_len)
    return Finding(blind and sees and right and certified, {
        "layer1_keys_blind_to_previous_token": blind, "layer2_keys_see_previous_token": sees,
        "one_layer_model_exact": right, "integer_certificate": certified,
        "one_layer_sequences": count,
        "lower_bound": "Sanford, Hsu, Telgarsky 2024 (arXiv 2408.14332): one layer needs "
                       "heads*width*precision = Omega(n)"})


two_layers_required = claim(
    "induction.two_layers_required", source="section 2 / Theorem 2.1",
    statement="an induction head requires at least two attention layers")
two_layers_required.literal(check_two_layers_literal)
two_layers_required.restated(check_two_layers_restated)

plot_patterns = induction_plots.plot_patterns
INSPECT = {"induction": induction_plots.inspect}
