"""constructions/one_layer_induction.py pinned coordinate by coordinate and weight by weight
(mutation testing, issue 13): the layout's index ranges, every weight against the module
docstring's circuit written out again, the size limit at its edge, the refusals' messages."""

from __future__ import annotations

import itertools

import pytest
import torch

from constructions import induction
from constructions.one_layer_induction import build_one_layer_induction, one_layer_layout


def test_layout_coordinates():
    lay = one_layer_layout(2, 3)   # n_tok = 3: tok, 3 slots, out, thermometer (3), position (3)
    assert lay.token == [0, 1, 2]
    assert lay.slots == [[3, 4, 5], [6, 7, 8], [9, 10, 11]]
    assert lay.output == [12, 13, 14] and lay.thermometer == [15, 16, 17]
    assert lay.position == (18, 19, 20) and lay.d_model == 21
    one = one_layer_layout(1, 1)
    assert (one.token, one.slots, one.output, one.thermometer, one.position, one.d_model) == (
        [0, 1], [[2, 3]], [4, 5], [6], (7, 8, 9), 10)


def _expected(V: int, N: int) -> dict[str, torch.Tensor]:
    """The module docstring's circuit, coordinate by coordinate (layout as pinned above)."""
    n = V + 1
    slot = lambda k, a: n * (k + 1) + a          # noqa: E731
    out, th, one = n * (N + 1), n * (N + 2), n * (N + 2) + N
    d = one + 3
    f = dict(dtype=torch.float64)
    W_E, W_pos = torch.zeros(n, d, **f), torch.zeros(N, d, **f)
    for a in range(n):
        W_E[a, a] = 1
    for T in range(N):
        W_pos[T, one], W_pos[T, one + 1], W_pos[T, one + 2] = 1, T, T * T
        for j in range(N):
            W_pos[T, th + j] = 1.0 if T > j else 0.0
    W_Q, W_K = torch.zeros(N, d, n, **f), torch.zeros(N, d, n, **f)
    W_V, W_O = torch.zeros(N, d, n, **f), torch.zeros(N, n, d, **f)
    for k in range(N):
        W_Q[k, one, 0], W_Q[k, one, 1] = 2 * k, -1    # score 2 k j - j^2
        W_K[k, one + 1, 0], W_K[k, one + 2, 1] = 1, 1
        for a in range(n):
            W_V[k, a, a] = 1
            W_O[k, a, slot(k, a)] = 1
    width = max(1, (N - 1) * V * V)
    W_in, b_in, W_out = torch.zeros(d, width, **f), torch.zeros(width, **f), torch.zeros(width, d, **f)
    for neuron, (j, a, c) in enumerate(itertools.product(range(N - 1), range(V), range(V))):
        for row in (slot(j, a), a, slot(j + 1, c), th + j):
            W_in[row, neuron] = 1
        b_in[neuron] = -3
        W_out[neuron, out + c] = 2 ** (j + 1)
    W_U, b_U = torch.zeros(d, n, **f), torch.zeros(n, **f)
    for a in range(n):
        W_U[out + a, a] = 1
    b_U[V] = 1
    return {"embed.W_E": W_E, "pos_embed.W_pos": W_pos, "blocks.0.attn.W_Q": W_Q,
            "blocks.0.attn.W_K": W_K, "blocks.0.attn.W_V": W_V, "blocks.0.attn.W_O": W_O,
            "blocks.0.mlp.W_in": W_in, "blocks.0.mlp.b_in": b_in, "blocks.0.mlp.W_out": W_out,
            "unembed.W_U": W_U, "unembed.b_U": b_U}


@pytest.mark.parametrize("V, N", [(2, 3), (3, 4), (1, 1), (1, 2), (2, 1)])
def test_weights_and_config_are_the_circuit(V, N):
    model = build_one_layer_induction(V, N)
    want = _expected(V, N)
    cfg = model.cfg
    assert (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head, cfg.d_vocab, cfg.n_ctx) == (
        1, N, want["embed.W_E"].shape[1], V + 1, V + 1, N)
    assert (cfg.d_mlp, cfg.act_fn, cfg.attention, cfg.d_vocab_out) == (
        max(1, (N - 1) * V * V), "relu", "hard", V + 1)
    assert model.bos == V
    for name, value in model.weights().items():
        expected = want.get(name, torch.zeros_like(value))
        assert value.dtype == torch.float64 and torch.equal(value, expected), name
    assert all(not p.requires_grad for p in model.parameters())


def test_predicts_the_reference_on_every_short_sequence():
    V, N = 2, 4
    model = build_one_layer_induction(V, N)
    seqs = torch.tensor([[V, *rest] for rest in itertools.product(range(V), repeat=N - 1)])
    assert torch.equal(model(seqs).argmax(-1), induction.induction_targets(seqs, V))


def test_size_limit_and_refusals():
    assert build_one_layer_induction(1, 50).cfg.n_ctx == 50          # at the limit: accepted
    with pytest.raises(ValueError, match=r"^n_ctx must be <= 50 here \(weights 2\^\(j\+1\) stay "
                                         r"exact\), got 51$"):
        build_one_layer_induction(1, 51)
    with pytest.raises(ValueError, match=r"^vocab_size must be >= 1, got 0$"):
        build_one_layer_induction(0, 3)
    with pytest.raises(ValueError, match=r"^n_ctx must be >= 1, got 0$"):
        build_one_layer_induction(2, 0)
    with pytest.raises(TypeError, match=r"^vocab_size must be an integer, got float 2.0$"):
        build_one_layer_induction(2.0, 3)
    with pytest.raises(TypeError, match=r"^n_ctx must be an integer, got str '3'$"):
        build_one_layer_induction(2, "3")
