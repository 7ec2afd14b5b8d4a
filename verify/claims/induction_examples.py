"""Claims of Worked Example 2 and Coding Demo 1 (proofs/induction.md).

- ``worked_example_2.cat_sat``: at the second "cat" of the section's sentence an induction head
  attends to "sat", because layer 1 moved "cat" to the position of "sat";
- ``demo_1.ideal_pattern``: the demo's "ideal induction head pattern" on [1,2,3,4,1,2,3,4];
- ``demo_1.is_induction_head``: the demo's detector (its body is ``pass``).

Every check takes the model, text, matrix or detector it judges as an argument with a default.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from constructions import induction, transformer
from constructions.induction import InductionModel
from constructions.transformer import Transformer
from verify import detectors
from verify.induction_certificate import at_least
from verify.registry import Finding, claim
from verify.sequences import DEMO_SEQUENCE, SEED, SENTENCE, induction_key, tokenize

COPY_TOL = 1e-12        # copying score of a head whose full OV circuit is the identity
RANDOM_CEILING = 0.5    # detector scores a random head must stay below
RANDOM_COPY_CEILING = 0.9


# --- worked_example_2.cat_sat --------------------------------------------------------------

def _cat_run(model: InductionModel | None, text: str, expected: str) -> dict:
    """Run ``model`` (default: ours, softmax, sized for ``text``) on [BOS] + the words of
    ``text``; report where block 1 attends from the last word and what is predicted there."""
    vocab, ids = tokenize(text)
    if expected not in vocab:
        raise ValueError(f"expected must be a word of text, got {expected!r}")
    V = len(vocab)
    model = model or induction.build_induction_model(V, len(ids) + 1, "softmax")
    _, cache = model.run_with_cache(torch.tensor([[V, *ids]]))
    logits = cache["unembed.hook_out"]
    words = ["<bos>", *[vocab[i] for i in ids]]
    T = len(words) - 1
    row = cache["blocks.1.attn.hook_pattern"][0, 0, T]
    target = int(induction_key(torch.tensor([[V, *ids]]))[0, T])  # the key after the match
    predicted = int(logits[0, T].argmax())                      # a VOCABULARY id (BOS = V)
    moved = int(cache["blocks.0.hook_resid_post"][0, target, model.layout.prev].argmax())
    return {"model": model, "words": words, "T": T, "row": row, "target": target,
            "attended": int(row.argmax()), "predicted_word": vocab[predicted]
            if predicted < V else "<bos>", "moved_word": vocab[moved] if moved < V else "<bos>",
            "expected_position": words.index(expected, 1) if target else 0}


def check_cat_sat_literal(model: InductionModel | None = None, text: str = SENTENCE,
                          expected: str = "sat") -> Finding:
    """At the last word of ``text`` (the second "cat") the head attends to the first
    ``expected`` word ("sat"), layer 1 has moved the query word there, and the prediction is
    ``expected``. Made precise: lower-case word tokens, '.' a token, BOS first; "attends to" =
    the row's largest weight."""
    run = _cat_run(model, text, expected)
    words, T = run["words"], run["T"]
    attends = run["attended"] == run["expected_position"]
    moved = run["moved_word"] == words[T]
    predicts = run["predicted_word"] == expected
    return Finding(attends and moved and predicts, {
        "tokens": words, "query_position": T, "attended_position": run["attended"],
        "attended_word": words[run["attended"]], "layer1_moved_there": run["moved_word"],
        "prediction": run["predicted_word"], "attention_weight": round(float(run["row"].max()), 6)})


def check_cat_sat_restated(model: InductionModel | None = None,
                           hard: InductionModel | None = None, text: str = SENTENCE,
                           expected: str = "sat") -> Finding:
    """proofs/: the softmax model (beta >= beta*) puts weight >= 1 - delta_2 on the key after
    the earlier "cat", which holds ``expected``; the hard model puts exactly 1 there."""
    soft, exact = _cat_run(model, text, expected), _cat_run(
        hard or induction.build_induction_model(len(tokenize(text)[0]), len(tokenize(text)[1]) + 1,
                                                "hard"), text, expected)
    bounds = induction.mass_bounds(soft["model"].beta, soft["model"].cfg.n_ctx)
    weight = float(soft["row"][soft["target"]])
    on_expected = bool(soft["words"][soft["target"]] == expected)
    weight_ok = bool(bounds["certified"]) and at_least(weight, 1 - bounds["delta_2"])
    one_hot = torch.zeros_like(exact["row"])
    one_hot[exact["target"]] = 1.0
    hard_ok = bool(torch.equal(exact["row"], one_hot)) and exact["predicted_word"] == expected
    return Finding(on_expected and weight_ok and hard_ok, {
        "target_key": soft["target"], "target_word": soft["words"][soft["target"]],
        "weight_on_target": weight, "bound": 1 - bounds["delta_2"],
        "certified_beta": bounds["certified"], "hard_row_one_hot": hard_ok})


cat_sat = claim("worked_example_2.cat_sat", source="Worked Example 2",
                statement="in 'The cat sat on the mat. The cat', the head at the 2nd cat attends "
                          "to sat")
cat_sat.literal(check_cat_sat_literal)
cat_sat.restated(check_cat_sat_restated)


# --- demo_1.ideal_pattern ------------------------------------------------------------------

def demo_matrix() -> Tensor:
    """The demo's 8 x 8 matrix: ones at [4,1], [5,2], [6,3] (no BOS, 0-indexed)."""
    attn = torch.zeros(8, 8, dtype=torch.float64)
    attn[4, 1] = attn[5, 2] = attn[6, 3] = 1.0
    return attn


def reference_frame(sequence: list[int] = DEMO_SEQUENCE) -> Tensor:
    """The induction pattern in the demo's frame (no BOS): row t has a 1 at kappa_t - 1 when
    its token occurred before, and is zero otherwise."""
    tokens = torch.tensor([[max(sequence) + 1, *sequence]])
    kappa = induction_key(tokens)[0, 1:]
    frame = torch.zeros(len(sequence), len(sequence), dtype=torch.float64)
    rows = (kappa > 0).nonzero()[:, 0]
    frame[rows, kappa[rows] - 1] = 1.0
    return frame


def check_ideal_literal(matrix: Tensor | None = None) -> Finding:
    """The demo's matrix is the ideal induction pattern of [1,2,3,4,1,2,3,4] (every row with an
    earlier occurrence of its token has its 1 after that occurrence; the demo leaves rows
    without a target at zero, and so does the reference here)."""
    matrix = demo_matrix() if matrix is None else matrix.to(torch.float64)
    want = reference_frame()
    return Finding(bool(torch.equal(matrix, want)), {
        "given_nonzero": matrix.nonzero().tolist(), "reference_nonzero": want.nonzero().tolist()})


def check_ideal_restated(model: InductionModel | None = None) -> Finding:
    """Our block-1 pattern on [BOS] + the demo's sequence, BOS row and column removed, equals
    the reference frame (which has [7,4]), and exactly the rows without a target (0-3) put
    their weight on BOS."""
    model = model or induction.build_induction_model(5, 9, "hard")
    _, cache = model.run_with_cache(torch.tensor([[5, *DEMO_SEQUENCE]]))
    full = cache["blocks.1.attn.hook_pattern"][0, 0]           # [9, 9], BOS at 0
    want = reference_frame()
    frame_ok = bool(torch.equal(full[1:, 1:], want))
    to_bos = [q - 1 for q in range(1, 9) if float(full[q, 0]) > 0.5]
    no_target = [t for t in range(8) if not bool(want[t].any())]
    return Finding(frame_ok and to_bos == no_target, {
        "ours_nonzero": (full[1:, 1:] > 0.5).nonzero().tolist(), "rows_on_bos": to_bos,
        "rows_without_target": no_target})


ideal_pattern = claim("demo_1.ideal_pattern", source="Coding Demo 1",
                      statement="the ideal induction pattern on [1,2,3,4,1,2,3,4] is "
                                "[4,1],[5,2],[6,3]")
ideal_pattern.literal(check_ideal_literal)
ideal_pattern.restated(check_ideal_restated)


# --- demo_1.is_induction_head --------------------------------------------------------------

def demo_is_induction_head(attention_matrix: Tensor) -> None:
    """The demo's detector as written: its body is ``pass``."""


def _random_model(cfg: transformer.Config, seed: int = SEED) -> Transformer:
    return Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed))


def check_detector_literal(detector: Callable[[Tensor], object] = demo_is_induction_head,
                           model: InductionModel | None = None,
                           random_model: Transformer | None = None) -> Finding:
    """The demo's detector tells an induction head from another head: it returns True on our
    block-1 pattern and False on a random head's, on one repeated random sequence."""
    model = model or induction.build_induction_model(20, 41, "softmax")
    random_model = random_model or _random_model(model.cfg)
    tokens = detectors.repeated_random_tokens(1, 20, 20, seed=SEED)
    ours = detector(detectors.head_pattern(model, tokens, 1)[0])
    other = detector(detectors.head_pattern(random_model, tokens, 1)[0])
    return Finding(ours is True and other is False,
                   {"on_induction_head": repr(ours), "on_random_head": repr(other)})


def check_detector_restated(model: InductionModel | None = None,
                            random_model: Transformer | None = None, *, seed: int = SEED
                            ) -> Finding:
    """Our detectors (verify/detectors.py): block 1's prefix-matching score >= 1 - delta_2,
    block 0's previous-token score >= 1 - delta_1, block 1's copying score 1; a random model's
    heads score below `RANDOM_CEILING` and copy less than `RANDOM_COPY_CEILING`."""
    model = model or induction.build_induction_model(20, 41, "softmax")
    random_model = random_model or _random_model(model.cfg, seed)
    tokens = detectors.repeated_random_tokens(40, (model.cfg.n_ctx - 1) // 2,
                                              model.layout.vocab_size, seed=seed)
    ind = detectors.prefix_matching_score(model, 1, 0, tokens)
    prev = detectors.previous_token_score(model, 0, 0, tokens)
    copy = detectors.head_copying_score(model, 1, 0)
    r_ind = max(detectors.prefix_matching_score(random_model, layer, 0, tokens) for layer in (0, 1))
    r_prev = max(detectors.previous_token_score(random_model, layer, 0, tokens) for layer in (0, 1))
    r_copy = max(abs(detectors.head_copying_score(random_model, layer, 0)) for layer in (0, 1))
    bounds = induction.mass_bounds(model.beta, model.cfg.n_ctx)
    ok = {"induction_score_at_least_bound": at_least(ind, 1 - bounds["delta_2"]),
          "previous_score_at_least_bound": at_least(prev, 1 - bounds["delta_1"]),
          "copying_score_one": abs(copy - 1) <= COPY_TOL,
          "random_induction_low": r_ind < RANDOM_CEILING,
          "random_previous_low": r_prev < RANDOM_CEILING,
          "random_copying_low": r_copy < RANDOM_COPY_CEILING}
    return Finding(all(ok.values()), {
        **ok, "induction_score": ind, "previous_token_score": prev, "copying_score": copy,
        "random_induction_max": r_ind, "random_previous_max": r_prev, "random_copying_max": r_copy,
        "floor_induction": 1 - bounds["delta_2"], "floor_previous": 1 - bounds["delta_1"]})


is_induction_head = claim("demo_1.is_induction_head", source="Coding Demo 1",
                          statement="detect induction heads by offset-diagonal patterns on "
                                    "repeated text")
is_induction_head.literal(check_detector_literal)
is_induction_head.restated(check_detector_restated)
