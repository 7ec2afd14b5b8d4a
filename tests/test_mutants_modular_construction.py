"""constructions/modular.py pinned weight by weight (mutation testing, issue 13): the config,
the slots, every weight against the module docstring's network written out again, the
frequency checks with their messages, the margins and the ideal logits against their formulas."""

from __future__ import annotations

import math

import pytest
import torch

from constructions import modular

ATOL = 1e-15  # cos/sin of exactly reduced angles in float64, against math.cos/math.sin


# --- frequencies ----------------------------------------------------------------------------

def test_default_freqs():
    assert modular.default_freqs(2) == (1,)
    assert modular.default_freqs(3) == (1,)
    assert modular.default_freqs(4) == (1,)
    assert modular.default_freqs(7) == (1, 2, 3) and modular.default_freqs(8) == (1, 2, 3)
    with pytest.raises(ValueError, match=r"^p must be >= 2, got 1$"):
        modular.default_freqs(1)


def test_freq_gcd():
    assert modular.freq_gcd(12, [8, 6]) == 2 and modular.freq_gcd(12, (8,)) == 4
    assert modular.freq_gcd(7, ()) == 7 and modular.freq_gcd(9, [3, 2]) == 1


def test_check_freqs_accepts_and_refuses_with_messages():
    assert modular.check_freqs(7, [3, 1]) == (3, 1)
    assert modular.check_freqs(6, (1, 5)) == (1, 5)                  # 1 and p - 1: the range's ends
    assert modular.check_freqs(6, (2, 4), admissible_only=False) == (2, 4)
    for freqs in ("12", 3):
        with pytest.raises(TypeError, match=r"^freqs must be a collection of integers in \[1, 6\] "
                                            rf"or None, got {type(freqs).__name__}$"):
            modular.check_freqs(7, freqs)
    for freqs, message in (
            ((0,), r"^freqs entry must be >= 1 and <= 6, got 0$"),
            ((7,), r"^freqs entry must be <= 6, got 7$"),
            ((), r"^freqs must be non-empty \(integers in \[1, 6\]\), got \(\)$"),
            ((1, 1), r"^freqs must be distinct, got \(1, 1\)$")):
        with pytest.raises(ValueError, match=message):
            modular.check_freqs(7, freqs)
    with pytest.raises(ValueError, match=r"^freqs \(2, 4\) are inadmissible for p=6: gcd\(p, freqs\) "
                                         r"= 2 > 1, so the logits of c and c \+ 3 tie for every "
                                         r"input \(the frequencies must generate Z_p: "
                                         r"gcd\(p, k_1, \.\.\., k_m\) = 1\)$"):
        modular.check_freqs(6, (2, 4))
    with pytest.raises(ValueError, match=r"c \+ 2 tie"):
        modular.check_freqs(6, (3,))


# --- config, slots, tables --------------------------------------------------------------------

def test_adder_config_and_slots():
    cfg = modular.adder_config(5, 2)
    assert (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head, cfg.d_vocab, cfg.n_ctx) == (
        1, 1, 12, 4, 5, 2)
    assert (cfg.d_mlp, cfg.act_fn, cfg.attn_scale, cfg.attention, cfg.d_vocab_out, cfg.dtype) == (
        16, "quadratic", 1.0, "softmax", 5, torch.float64)
    assert modular.adder_config(5, 2, torch.float32).dtype == torch.float32
    s = modular.slots(3)
    assert {k: v.tolist() for k, v in s.items()} == {
        "B_cos": [0, 2, 4], "B_sin": [1, 3, 5], "S_cos": [6, 8, 10], "S_sin": [7, 9, 11],
        "O_cos": [12, 14, 16], "O_sin": [13, 15, 17]}


def test_unit_table():
    cos_t, sin_t = modular.unit_table(7)
    assert cos_t.dtype == sin_t.dtype == torch.float64 and cos_t.shape == (7,)
    want_c = torch.tensor([math.cos(2 * math.pi * j / 7) for j in range(7)], dtype=torch.float64)
    want_s = torch.tensor([math.sin(2 * math.pi * j / 7) for j in range(7)], dtype=torch.float64)
    torch.testing.assert_close(cos_t, want_c, rtol=0, atol=ATOL)
    torch.testing.assert_close(sin_t, want_s, rtol=0, atol=ATOL)
    c32, s32 = modular.unit_table(7, torch.float32)
    assert c32.dtype == torch.float32 and torch.equal(c32, want_c.float())
    assert s32.dtype == torch.float32 and torch.equal(s32, want_s.float())


# --- the weights ------------------------------------------------------------------------------

def _expected(p: int, ks: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Slots B = [0, 2m), S = [2m, 4m), O = [4m, 6m); neuron 8 i + n of frequency i reads and
    writes by the polarization table of the module docstring."""
    m, f = len(ks), dict(dtype=torch.float64)
    W_E, W_U = torch.zeros(p, 6 * m, **f), torch.zeros(6 * m, p, **f)
    for i, k in enumerate(ks):
        for x in range(p):
            angle = 2 * math.pi * ((k * x) % p) / p
            W_E[x, 2 * i], W_E[x, 2 * i + 1] = math.cos(angle), math.sin(angle)
            W_U[4 * m + 2 * i, x], W_U[4 * m + 2 * i + 1, x] = math.cos(angle), math.sin(angle)
    W_V, W_O = torch.zeros(1, 6 * m, 2 * m, **f), torch.zeros(1, 2 * m, 6 * m, **f)
    for j in range(2 * m):
        W_V[0, j, j] = 1          # copy slot B
        W_O[0, j, 2 * m + j] = 2  # into S, times 2 (attention 1/2 on each of a, b)
    W_in, W_out = torch.zeros(6 * m, 8 * m, **f), torch.zeros(8 * m, 6 * m, **f)
    # (S_cos, S_sin, B_cos, B_sin) coefficients and (O_cos, O_sin) outputs of each neuron
    table = [((1, 0, 0, 0), (1 / 4, 0)), ((0, 1, 0, 0), (-1 / 4, 0)),
             ((1, 0, -2, 0), (-1 / 4, 0)), ((0, 1, 0, -2), (1 / 4, 0)),
             ((1, 1, 0, 0), (0, 1 / 8)), ((1, -1, 0, 0), (0, -1 / 8)),
             ((1, 1, -2, -2), (0, -1 / 8)), ((1, -1, -2, 2), (0, 1 / 8))]
    for i in range(m):
        rows = (2 * m + 2 * i, 2 * m + 2 * i + 1, 2 * i, 2 * i + 1)
        for n, (coeffs, (to_cos, to_sin)) in enumerate(table):
            for row, coeff in zip(rows, coeffs):
                W_in[row, 8 * i + n] = coeff
            W_out[8 * i + n, 4 * m + 2 * i] = to_cos
            W_out[8 * i + n, 4 * m + 2 * i + 1] = to_sin
    return {"embed.W_E": W_E, "blocks.0.attn.W_V": W_V, "blocks.0.attn.W_O": W_O,
            "blocks.0.mlp.W_in": W_in, "blocks.0.mlp.W_out": W_out, "unembed.W_U": W_U}


@pytest.mark.parametrize("p, freqs", [(5, None), (7, (3, 1)), (2, None), (6, (1, 5))])
def test_adder_weights_are_the_network(p, freqs):
    adder = modular.build_adder(p, freqs)
    ks = modular.default_freqs(p) if freqs is None else freqs
    assert adder.p == p and adder.freqs == ks
    assert adder.transformer.cfg == modular.adder_config(p, len(ks))
    want = _expected(p, ks)
    for name, value in adder.transformer.weights().items():
        expected = want.get(name, torch.zeros_like(value))
        assert value.dtype == torch.float64, name
        torch.testing.assert_close(value, expected, rtol=0, atol=ATOL, msg=name)
    assert all(not w.requires_grad for w in adder.transformer.parameters())
    x = torch.arange(p).repeat_interleave(p)
    y = torch.arange(p).repeat(p)
    assert torch.equal(adder.predict(x, y), (x + y) % p)
    logits = adder(x, y)
    ideal = modular.ideal_logits(p, ks, (x + y)[:, None] - torch.arange(p)[None, :])
    torch.testing.assert_close(logits, ideal, rtol=0, atol=1e-12)


def test_adder_float32_and_refusals():
    adder = modular.build_adder(5, dtype=torch.float32)
    assert adder.transformer.cfg.dtype == torch.float32
    assert adder.transformer.embed.W_E.dtype == torch.float32
    with pytest.raises(ValueError, match=r"^p must be >= 2, got 1$"):
        modular.build_adder(1)
    with pytest.raises(ValueError, match=r"^p must be >= 2, got 1$"):   # before the freqs
        modular.build_adder(1, (1,))
    with pytest.raises(ValueError, match=r"^freqs entry must be <= 4, got 5$"):
        modular.build_adder(5, (5,))
    with pytest.raises(ValueError, match=r"inadmissible for p=6"):
        modular.build_adder(6, (2,))


def test_build_unchecked_accepts_inadmissible_frequencies_only():
    broken = modular.build_unchecked(6, (2,))
    assert broken.freqs == (2,) and broken.p == 6
    want = _expected(6, (2,))
    torch.testing.assert_close(broken.transformer.embed.W_E, want["embed.W_E"], rtol=0, atol=ATOL)
    b32 = modular.build_unchecked(6, (2,), dtype=torch.float32)
    assert b32.transformer.embed.W_E.dtype == torch.float32
    with pytest.raises(ValueError, match=r"^p must be >= 2, got 1$"):
        modular.build_unchecked(1, (1,))
    with pytest.raises(ValueError, match=r"^freqs must be distinct, got \(2, 2\)$"):
        modular.build_unchecked(6, (2, 2))


# --- the module's parameter interface ---------------------------------------------------------

@pytest.mark.filterwarnings("ignore:Positional args:FutureWarning")  # torch's, on state_dict(None, "m.")
def test_parameters_state_dict_and_loading():
    adder = modular.build_adder(5)
    names = [n for n, _ in adder.named_parameters()]
    assert names == [n for n, _ in adder.transformer.named_parameters()] and "embed.W_E" in names
    assert [n for n, _ in adder.named_parameters(prefix="m")][0] == "m." + names[0]
    assert all(n.startswith("m.") for n in adder.state_dict(None, "m."))
    copy = modular.build_adder(5)
    state = {k: torch.zeros_like(v) for k, v in adder.state_dict().items()}
    copy.load_state_dict(state)
    state["embed.W_E"].fill_(1.0)   # the default copies: the model does not follow its source
    assert float(copy.transformer.embed.W_E.abs().max()) == 0.0
    shared = {k: v.clone() for k, v in adder.state_dict().items()}
    copy.load_state_dict(shared, assign=True)
    assert copy.transformer.embed.W_E.data_ptr() == shared["embed.W_E"].data_ptr()
    assert "p=5, freqs=2 frequencies" == adder.extra_repr()


def test_named_parameters_passes_recurse_and_remove_duplicate_on():
    adder = modular.build_adder(5)
    attn = adder.transformer.blocks[0].attn
    attn.W_K = attn.W_Q            # one parameter under two names (same shape [1, 6m, 2m])
    once = [n for n, _ in adder.named_parameters()]
    twice = [n for n, _ in adder.named_parameters(remove_duplicate=False)]
    assert "blocks.0.attn.W_K" not in once and "blocks.0.attn.W_K" in twice
    assert len(twice) == len(once) + 1
    assert list(adder.named_parameters(recurse=False)) == []   # the transformer holds none itself


# --- margins and the ideal logits -------------------------------------------------------------

def test_margins():
    assert [modular.dirichlet_margin(p) for p in (2, 3, 4, 5, 8)] == [2.0, 1.5, 1.0, 2.5, 3.0]
    for p in (2, 3, 5, 12):
        assert modular.margin_lower_bound(p) == pytest.approx(
            1 - math.cos(2 * math.pi / p), rel=1e-12, abs=1e-15)
    for fn in (modular.dirichlet_margin, modular.margin_lower_bound):
        with pytest.raises(ValueError, match=r"^p must be >= 2, got 1$"):
            fn(1)


def test_ideal_logits():
    d = torch.tensor([[0, 1, 2], [3, -1, 7]])
    got = modular.ideal_logits(5, (1, 2), d)
    want = torch.tensor([[sum(math.cos(2 * math.pi * k * t / 5) for k in (1, 2)) for t in row]
                         for row in d.tolist()], dtype=torch.float64)
    assert got.shape == (2, 3) and got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=0, atol=1e-14)
    assert float(modular.ideal_logits(7, (3,), torch.tensor(0))) == 1.0
