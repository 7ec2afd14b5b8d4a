"""The constructions' argument checks and Demo 2's model, each bound at its edge and each
message pinned (mutation testing, issue 13): a loosened bound or a garbled message fails here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

from constructions import exact, modular, pizza, previous_token, transformer
from constructions import validation as V
from constructions.tiny_mlp import TinyModel, check_residue_pair, check_residues, parameter_count

# --- check_int ------------------------------------------------------------------------------


def test_check_int_accepts_integers_and_returns_int():
    assert V.check_int("n", 3) == 3
    value = V.check_int("n", np.int64(4), minimum=4, maximum=4)  # both bounds inclusive
    assert value == 4 and type(value) is int


@pytest.mark.parametrize("value", [True, 2.0, "3", None])
def test_check_int_refuses_non_integers(value):
    with pytest.raises(TypeError, match=rf"^n must be an integer, got {type(value).__name__} "):
        V.check_int("n", value)


def test_check_int_bounds_at_the_edge():
    with pytest.raises(ValueError, match=r"^p must be >= 2, got 1$"):
        V.check_int("p", 1, minimum=2)
    with pytest.raises(ValueError, match=r"^p must be >= 2 and <= 9, got 1$"):
        V.check_int("p", 1, minimum=2, maximum=9)
    with pytest.raises(ValueError, match=r"^p must be <= 9, got 10$"):
        V.check_int("p", 10, minimum=2, maximum=9)
    assert V.check_int("p", 9, maximum=9) == 9 and V.check_int("p", -5) == -5
    assert V.check_int("p", 0, minimum=0) == 0 and V.check_int("p", 0, maximum=0) == 0


# --- check_positive_real, check_choice ---------------------------------------------------


def test_check_positive_real():
    assert V.check_positive_real("beta", 2) == 2.0 and type(V.check_positive_real("b", 2)) is float
    assert V.check_positive_real("beta", 5e-324) == 5e-324  # the smallest positive float
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=rf"^beta must be a finite number > 0, got {bad}$"):
            V.check_positive_real("beta", bad)
    for bad in (True, "1", None):
        with pytest.raises(TypeError, match=rf"^beta must be a real number, got "
                                            rf"{type(bad).__name__} {bad!r}$"):
            V.check_positive_real("beta", bad)


def test_check_choice():
    assert V.check_choice("act_fn", "relu", ("relu", "quadratic")) is None
    with pytest.raises(ValueError, match=r"^act_fn must be one of 'relu', 'quadratic'; got 'gelu'$"):
        V.check_choice("act_fn", "gelu", ("relu", "quadratic"))


# --- check_tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8])
def test_check_tokens_accepts_every_integer_dtype_as_long(dtype):
    out = V.check_tokens(torch.tensor([[0, 2]], dtype=dtype), d_vocab=3, n_ctx=2)
    assert out.dtype == torch.long and out.tolist() == [[0, 2]]


def test_check_tokens_refusals_name_the_argument():
    ok = dict(d_vocab=3, n_ctx=2)
    with pytest.raises(TypeError, match=r"^seq must be a torch.LongTensor \[batch, pos\], got list$"):
        V.check_tokens([[0]], name="seq", **ok)
    with pytest.raises(TypeError, match=r"^tokens must have an integer dtype \(torch.long\), got "
                                        r"torch.float32$"):
        V.check_tokens(torch.zeros(1, 1), **ok)
    with pytest.raises(TypeError, match="got torch.bool"):
        V.check_tokens(torch.zeros(1, 1, dtype=torch.bool), **ok)
    with pytest.raises(ValueError, match=r"^tokens must have shape \[batch, pos\], got shape \(2,\)$"):
        V.check_tokens(torch.tensor([0, 1]), **ok)
    with pytest.raises(ValueError, match=r"^tokens length must be between 1 and n_ctx=2, got 3$"):
        V.check_tokens(torch.zeros(1, 3, dtype=torch.long), **ok)
    with pytest.raises(ValueError, match=r"^tokens length must be between 1 and n_ctx=2, got 0$"):
        V.check_tokens(torch.zeros(1, 0, dtype=torch.long), **ok)
    with pytest.raises(ValueError, match=r"^tokens must lie in \[0, 2\] \(d_vocab=3\), got values "
                                         r"in \[0, 3\]$"):
        V.check_tokens(torch.tensor([[0, 3]]), **ok)
    with pytest.raises(ValueError, match=r"got values in \[-1, 2\]$"):
        V.check_tokens(torch.tensor([[-1, 2]]), **ok)
    assert V.check_tokens(torch.zeros(0, 2, dtype=torch.long), **ok).shape == (0, 2)  # no batch
    assert V.check_tokens(torch.tensor([[2, 1]]), **ok).tolist() == [[2, 1]]  # n_ctx, top token


# --- memory limits --------------------------------------------------------------------------


@pytest.mark.parametrize("n, text", [
    (999, "999 bytes"), (1000, "1 kB"), (1500, "1.5 kB"), (10**6, "1 MB"), (2.5e9, "2.5 GB"),
    (1e12, "1 TB"), (3.14159e20, "3.14e+08 TB"), (1e18, "1.00e+06 TB"), (999999e12, "1e+06 TB")])
def test_format_bytes(n, text):
    assert V.format_bytes(n) == text


def test_too_large_carries_its_figures():
    error = V.TooLarge("the model", 2 * 10**9, 10**9, "use --max-memory")
    assert isinstance(error, ValueError)
    assert (error.what, error.estimate, error.limit, error.override) == (
        "the model", 2 * 10**9, 10**9, "use --max-memory")
    assert str(error) == ("the model needs about 2 GB of memory, more than the 1 GB limit; "
                          "use --max-memory")


def test_physical_memory_and_its_fallback(monkeypatch):
    assert V.physical_memory() == int(V.os.sysconf("SC_PAGE_SIZE")) * int(
        V.os.sysconf("SC_PHYS_PAGES"))

    def no_sysconf(name):
        raise ValueError(name)
    monkeypatch.setattr(V.os, "sysconf", no_sysconf)
    assert V.physical_memory() == 8 * 10**9


def test_memory_limit_sources_in_order(monkeypatch):
    monkeypatch.delenv(V.MEMORY_ENV, raising=False)
    monkeypatch.setattr(V, "physical_memory", lambda: 10**10)
    assert V.memory_limit() == int(0.8 * 10**10)
    monkeypatch.setenv(V.MEMORY_ENV, "2.5")
    assert V.memory_limit() == 2_500_000_000
    with V.memory_limit_set(1234):
        assert V.memory_limit() == 1234
        with V.memory_limit_set(None):
            assert V.memory_limit() == 1234
    assert V.memory_limit() == 2_500_000_000
    for bad, message in (("lots", "must be a number of GB, got 'lots'"),
                         ("0", "must be > 0 GB, got '0'"), ("-1", "must be > 0 GB, got '-1'")):
        monkeypatch.setenv(V.MEMORY_ENV, bad)
        with pytest.raises(ValueError, match=r"^\$CIRCUIT_PROOFS_MAX_MEMORY_GB " + message + "$"):
            V.memory_limit()


def test_memory_limit_set_validates_and_restores_on_error():
    with pytest.raises(ValueError, match=r"^n_bytes must be >= 1, got 0$"), V.memory_limit_set(0):
        pass
    with pytest.raises(RuntimeError), V.memory_limit_set(5):
        raise RuntimeError
    assert V._limit_override == []


def test_check_memory_at_the_limit():
    with V.memory_limit_set(100):
        assert V.check_memory("x", 100) == 100 and type(V.check_memory("x", 100)) is int
        with pytest.raises(V.TooLarge) as error:
            V.check_memory("x", 101)
        assert (error.value.estimate, error.value.limit) == (101, 100)
        assert error.value.override == "set $CIRCUIT_PROOFS_MAX_MEMORY_GB to raise it"
        with pytest.raises(V.TooLarge, match="; use less$"):
            V.check_memory("x", 101, override="use less")


# --- Demo 2's TinyModel ---------------------------------------------------------------------


def test_tiny_model_sizes_and_bounds():
    m = TinyModel(2, 1)
    assert (m.p, m.d) == (2, 1) and parameter_count(m) == 2 * 1 + 2 * 2 + 2 + 2 * 2 + 2
    assert m.fc[0].out_features == 2 and m.fc[2].in_features == 2
    assert TinyModel(3, 2, hidden=1).fc[0].out_features == 1
    assert TinyModel(3, 2, dtype=torch.float64).embed.weight.dtype == torch.float64
    assert TinyModel(3).d == 64
    with pytest.raises(ValueError, match=r"^p must be >= 2, got 1$"):
        TinyModel(1)
    with pytest.raises(ValueError, match=r"^d must be >= 1, got 0$"):
        TinyModel(3, 0)
    with pytest.raises(ValueError, match=r"^hidden must be >= 1, got 0$"):
        TinyModel(3, 2, hidden=0)


def test_tiny_model_forward_is_the_documented_layout():
    torch.manual_seed(0)
    m = TinyModel(5, 3, dtype=torch.float64)
    x, y = torch.tensor([0, 4]), torch.tensor([3, 1])
    e = torch.cat([m.embed.weight[x], m.embed.weight[y]], dim=-1)
    expected = torch.relu(e @ m.fc[0].weight.T + m.fc[0].bias) @ m.fc[2].weight.T + m.fc[2].bias
    torch.testing.assert_close(m(x, y), expected)
    with pytest.raises(ValueError, match=r"^y must lie in \[0, 4\] \(p=5\)"):
        m(x, torch.tensor([0, 5]))


def test_check_residues():
    assert check_residues("x", torch.tensor([0, 4], dtype=torch.int32), 5).dtype == torch.long
    assert check_residues("x", torch.zeros(0, dtype=torch.long), 5).shape == (0,)
    with pytest.raises(TypeError, match=r"^x must be a torch.LongTensor \[batch\], got list$"):
        check_residues("x", [0], 5)
    for dtype in (torch.float32, torch.bool, torch.complex64, torch.complex128):
        with pytest.raises(TypeError, match=rf"^x must have an integer dtype \(torch.long\), got "
                                            rf"{dtype}$"):
            check_residues("x", torch.zeros(1, dtype=dtype), 5)
    with pytest.raises(ValueError, match=r"^x must have shape \[batch\], got shape \(1, 1\)$"):
        check_residues("x", torch.zeros(1, 1, dtype=torch.long), 5)
    with pytest.raises(ValueError, match=r"^b must lie in \[0, 4\] \(p=5\), got values in \[-1, 0\]$"):
        check_residues("b", torch.tensor([-1, 0]), 5)
    with pytest.raises(ValueError, match=r"got values in \[0, 5\]$"):
        check_residues("b", torch.tensor([0, 5]), 5)


def test_check_residue_pair():
    x, y = check_residue_pair(torch.tensor([1]), torch.tensor([2], dtype=torch.int16), 3)
    assert x.tolist() == [1] and y.tolist() == [2] and y.dtype == torch.long
    with pytest.raises(ValueError, match=r"^x and y must have the same shape, got \(1,\) and \(2,\)$"):
        check_residue_pair(torch.tensor([1]), torch.tensor([1, 2]), 3)
    with pytest.raises(ValueError, match=r"^x must lie"):
        check_residue_pair(torch.tensor([3]), torch.tensor([1]), 3)


# --- constructions/exact.py: the SymPy mirror -------------------------------------------------

def _tiny_cfg(**kw) -> transformer.Config:
    base = dict(n_layers=1, n_heads=1, d_model=2, d_head=1, d_vocab=3, n_ctx=3)
    return transformer.Config(**{**base, **kw})


def test_exact_forward_validates_tokens():
    cfg = _tiny_cfg()
    w = exact.exact_weights(transformer.Transformer(cfg))
    with pytest.raises(ValueError, match=r"^tokens length must be between 1 and n_ctx=3, got 0$"):
        exact.exact_forward(cfg, w, [])
    with pytest.raises(ValueError, match=r"^tokens length must be between 1 and n_ctx=3, got 4$"):
        exact.exact_forward(cfg, w, [0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"^tokens must lie in \[0, 2\], got \[0, 3\]$"):
        exact.exact_forward(cfg, w, [0, 3])
    with pytest.raises(ValueError, match=r"got \[-1\]$"):
        exact.exact_forward(cfg, w, [-1])
    assert exact.exact_forward(cfg, w, [2, 0, 1]).shape == (3, 3)  # n_ctx and top token accepted


def test_exact_weights_shapes_and_exact_values():
    cfg = _tiny_cfg(d_mlp=2, act_fn="relu")
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=3))
    w = exact.exact_weights(model)
    assert isinstance(w["embed.W_E"], sp.Matrix) and w["embed.W_E"].shape == (3, 2)
    assert isinstance(w["blocks.0.attn.W_Q"], list) and w["blocks.0.attn.W_Q"][0].shape == (2, 1)
    assert w["blocks.0.attn.b_O"].shape == (1, 2) and w["blocks.0.attn.b_Q"].shape == (1, 1)
    value = float(model.embed.W_E[1, 0])
    assert w["embed.W_E"][1, 0] == sp.Rational(value) and float(w["embed.W_E"][1, 0]) == value


def test_exact_mirror_reads_missing_biases_as_zero_and_names_missing_weights():
    cfg = _tiny_cfg()
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=1))
    w = exact.exact_weights(model)
    without = {k: v for k, v in w.items() if ".b_" not in k}
    zero_bias = exact.exact_weights(transformer.Transformer.from_weights(
        cfg, {k: (torch.zeros_like(v) if ".b_" in k else v) for k, v in model.weights().items()}))
    assert exact.exact_forward(cfg, without, [0, 1]) == exact.exact_forward(cfg, zero_bias, [0, 1])
    for name in ("unembed.W_U", "blocks.0.attn.W_O", "embed.W_E"):
        with pytest.raises(ValueError, match=rf"^weights: missing '{name}'$"):
            exact.exact_forward(cfg, {k: v for k, v in w.items() if k != name}, [0, 1])


def test_exact_hard_pattern_shares_ties_and_softmax_is_symbolic():
    assert exact._pattern_row([sp.Integer(1), sp.Integer(3), sp.Integer(3)], "hard") == [
        0, sp.Rational(1, 2), sp.Rational(1, 2)]
    assert exact._pattern_row([sp.Integer(2)], "hard") == [1]
    x = sp.Symbol("x")
    row = exact._pattern_row([sp.Integer(0), x], "softmax")
    assert sp.simplify(row[0] - 1 / (1 + sp.exp(x))) == 0
    assert sp.simplify(row[1] - sp.exp(x) / (1 + sp.exp(x))) == 0


@pytest.mark.parametrize("act_fn", ["relu", "quadratic"])
def test_exact_mlp_activation(act_fn):
    cfg = _tiny_cfg(d_mlp=1, act_fn=act_fn)
    w = exact.exact_weights(transformer.Transformer(cfg))
    w["blocks.0.mlp.W_in"] = sp.Matrix([[1], [0]])
    w["blocks.0.mlp.W_out"] = sp.Matrix([[1, 0]])
    x = sp.Matrix([[-3, 5]])
    out = exact._mlp(cfg, w, "blocks.0.mlp.", x)
    assert out == sp.Matrix([[0 if act_fn == "relu" else 9, 0]])
    assert exact._mlp(cfg, w, "blocks.0.mlp.", sp.Matrix([[2, 5]])) == sp.Matrix(
        [[2 if act_fn == "relu" else 4, 0]])


# --- previous_token.py, modular.py, pizza.py, transformer.py: what no other test pins ----------

def test_previous_token_scores_are_the_documented_quadratic():
    assert previous_token.previous_token_scores(3).tolist() == [
        [0.0, -3.0, -8.0], [0.0, -1.0, -4.0], [0.0, 1.0, 0.0]]
    s = previous_token.previous_token_scores(6)
    for i in range(1, 6):  # row i peaks at i - 1 among keys 0..i
        assert int(s[i, : i + 1].argmax()) == i - 1


def test_layout_subspaces():
    layout = previous_token.Layout(vocab_size=2, n_ctx=4)
    assert layout.subspaces() == {"token": [0, 1, 2], "previous_token": [3, 4, 5],
                                  "output": [6, 7, 8], "position": [9, 10, 11]}
    assert layout.d_model == 12 and layout.d_head == 4 and layout.bos == 2


def test_modular_adder_predicts_and_round_trips_its_state():
    adder = modular.build_adder(7)
    x, y = torch.tensor([0, 3, 6, 5]), torch.tensor([0, 5, 6, 1])
    assert adder.predict(x, y).tolist() == [0, 1, 5, 6]
    state = adder.state_dict(prefix="m.")
    assert all(k.startswith("m.") for k in state) and "m.embed.W_E" in state
    copy = modular.build_adder(7)
    with torch.no_grad():
        for param in copy.transformer.parameters():
            param.zero_()
    assert copy.load_state_dict(adder.state_dict()) is not None
    assert copy.predict(x, y).tolist() == [0, 1, 5, 6]
    with pytest.raises(RuntimeError):  # strict by default: a missing key is refused
        copy.load_state_dict({})
    copy.load_state_dict({}, strict=False)


def test_pizza_fourier_coefficients():
    assert pizza.fourier_coeff(1) == pytest.approx(4 / (3 * math.pi), rel=1e-15)
    assert pizza.fourier_coeff(2) == pytest.approx(-4 / (15 * math.pi), rel=1e-15)
    with pytest.raises(ValueError, match=r"^k must be >= 1, got 0$"):
        pizza.fourier_coeff(0)


def test_transformer_attention_accessor():
    cfg = transformer.Config(n_layers=2, n_heads=1, d_model=2, d_head=1, d_vocab=2, n_ctx=2)
    model = transformer.Transformer(cfg)
    assert model.attention(1) is model.blocks[1].attn and model.attention(0) is model.blocks[0].attn


def test_previous_token_weights_are_float64_and_exact():
    layout = previous_token.Layout(vocab_size=3, n_ctx=5)
    emb = previous_token.embeddings(layout)
    for name in ("embed.W_E", "pos_embed.W_pos"):
        assert emb[name].dtype == torch.float64
    assert emb["pos_embed.W_pos"][4, layout.pos_sq] == 16.0
    assert previous_token.embeddings(layout, torch.float32)["embed.W_E"].dtype == torch.float32
    beta = 0.1  # not a float32 number: weights built in float32 would round it
    head = previous_token.previous_token_head(layout, beta)
    assert sorted(head) == [f"blocks.0.attn.{w}" for w in ("W_K", "W_O", "W_Q", "W_V")]
    for value in head.values():
        assert value.dtype == torch.float64
    W_Q = head["blocks.0.attn.W_Q"]
    assert float(W_Q[0, layout.pos_i, 0]) == 2 * beta and float(W_Q[0, layout.pos_one, 1]) == -beta
    W_O = head["blocks.0.attn.W_O"]
    assert W_O.sum() == layout.n_tokens and set(W_O.unique().tolist()) == {0.0, 1.0}
    assert sorted(previous_token.previous_token_head(layout, beta, layer=1)) == [
        f"blocks.1.attn.{w}" for w in ("W_K", "W_O", "W_Q", "W_V")]
    assert previous_token.previous_token_scores(3).dtype == torch.float64
