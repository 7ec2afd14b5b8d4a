"""constructions/exact.py at its edges (mutation testing, issue 13): the SymPy mirror against the
torch forward on fixed dyadic weights with every bias nonzero (a dropped or misread bias, a lost
scale, a wrong layer count changes the logits), absent biases of every width read as zero, and
the exact conversion of float weights."""

from __future__ import annotations

import pytest
import sympy as sp
import torch

from constructions import exact, transformer
from constructions.transformer import Config, Transformer

TOL = 1e-12  # dyadic weights are exact in both; only exp() in softmax rounds in float64


def _dyadic(cfg: Config, seed: int) -> Transformer:
    """Random weights rounded to multiples of 1/4 (exact in float64 and in SymPy), every bias
    shifted by 1/4 so that none is zero."""
    weights = {name: (4 * value).round() / 4 + (0.25 if ".b_" in name else 0.0)
               for name, value in transformer.random_weights(cfg, seed=seed, scale=1.5).items()}
    return Transformer.from_weights(cfg, weights)


def _as_float(matrix: sp.Matrix) -> torch.Tensor:
    return torch.tensor([[float(sp.N(matrix[i, j], 30)) for j in range(matrix.cols)]
                         for i in range(matrix.rows)], dtype=torch.float64)


@pytest.mark.parametrize("cfg", [
    Config(n_layers=2, n_heads=2, d_model=3, d_head=2, d_vocab=4, n_ctx=4, d_mlp=3,
           act_fn="relu", attn_scale=2.0, attention="hard", d_vocab_out=5),
    Config(n_layers=1, n_heads=2, d_model=3, d_head=2, d_vocab=4, n_ctx=4, d_mlp=2,
           act_fn="quadratic", attn_scale=0.5, attention="hard"),
    Config(n_layers=1, n_heads=2, d_model=2, d_head=2, d_vocab=3, n_ctx=3, d_mlp=2,
           act_fn="relu", attn_scale=2.0, attention="softmax"),
], ids=["hard-relu-2-layers", "hard-quadratic", "softmax-relu"])
def test_mirror_equals_torch_with_every_bias_nonzero(cfg):
    model = _dyadic(cfg, seed=5)
    for name, value in model.weights().items():
        if ".b_" in name:
            assert torch.count_nonzero(value) > 0, name
    tokens = [3, 1, 0, 1][: cfg.n_ctx] if cfg.d_vocab == 4 else [2, 0, 1]
    logits = exact.exact_forward(cfg, exact.exact_weights(model), tokens)
    assert logits.shape == (len(tokens), cfg.vocab_out)
    torch.testing.assert_close(_as_float(logits), model(torch.tensor([tokens]))[0],
                               rtol=0, atol=TOL)


def test_attention_scale_divides_the_scores_exactly():
    cfg = Config(n_layers=1, n_heads=1, d_model=1, d_head=1, d_vocab=2, n_ctx=2, attn_scale=4.0,
                 d_vocab_out=1)
    w = {"embed.W_E": sp.Matrix([[0], [1]]), "pos_embed.W_pos": sp.zeros(2, 1),
         "blocks.0.attn.W_Q": [sp.Matrix([[2]])], "blocks.0.attn.W_K": [sp.Matrix([[3]])],
         "blocks.0.attn.W_V": [sp.Matrix([[1]])], "blocks.0.attn.W_O": [sp.Matrix([[1]])],
         "unembed.W_U": sp.Matrix([[1]])}
    # position 1 (token 1): scores [0, 6] / 4; its value reads the key's token (0 or 1)
    logit = exact.exact_forward(cfg, w, [0, 1])[1, 0]
    expected = 1 + sp.exp(sp.Rational(3, 2)) / (1 + sp.exp(sp.Rational(3, 2)))
    assert sp.simplify(logit - expected) == 0


def test_absent_biases_of_every_width_are_zero():
    cfg = Config(n_layers=1, n_heads=2, d_model=3, d_head=2, d_vocab=4, n_ctx=3, d_mlp=4,
                 act_fn="relu", attention="hard", d_vocab_out=5)
    model = _dyadic(cfg, seed=1)
    w = exact.exact_weights(model)
    without = {k: v for k, v in w.items() if ".b_" not in k}
    zeros = exact.exact_weights(Transformer.from_weights(
        cfg, {k: (torch.zeros_like(v) if ".b_" in k else v) for k, v in model.weights().items()}))
    assert exact.exact_forward(cfg, without, [3, 0, 3]) == exact.exact_forward(cfg, zeros, [3, 0, 3])
    assert exact._row(without, "blocks.0.attn.b_Q", 2, 1) == sp.zeros(1, 2)
    assert exact._row(w, "blocks.0.attn.b_Q", 2, 1) == w["blocks.0.attn.b_Q"].row(1)
    assert exact._row(w, "blocks.0.mlp.b_in", 4) == w["blocks.0.mlp.b_in"]


def test_exact_weights_of_a_float32_model_are_its_float32_values():
    cfg = Config(n_layers=1, n_heads=1, d_model=1, d_head=1, d_vocab=1, n_ctx=1,
                 dtype=torch.float32)
    model = Transformer.from_weights(cfg, {"embed.W_E": [[0.1]], "unembed.b_U": [0.3]})
    w = exact.exact_weights(model)
    assert w["embed.W_E"][0, 0] == sp.Rational(float(torch.tensor(0.1, dtype=torch.float32)))
    assert w["embed.W_E"][0, 0] != sp.Rational(1, 10) and w["unembed.b_U"].shape == (1, 1)
    assert isinstance(w["blocks.0.attn.W_Q"], list) and len(w["blocks.0.attn.W_Q"]) == 1
