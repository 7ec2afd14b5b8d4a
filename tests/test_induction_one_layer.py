"""induction.two_layers_required: one attention layer is blind to x_{j-1} in its keys, yet one
layer with an MLP solves the task exactly; plus the command line for the induction tools."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from constructions import induction, one_layer_induction, transformer
from constructions.transformer import Transformer
from tests import strategies as S
from verify import cli
from verify import induction_certificate as cert
from verify import sequences as seqs
from verify.claims import induction as claims


@given(S.induction_cases(max_vocab=4, max_ctx=8))
def test_one_layer_model_matches_reference(case) -> None:
    V, N, tokens = case
    model = one_layer_induction.build_one_layer_induction(V, N)
    logits, cache = model.run_with_cache(tokens)
    assert torch.equal(logits.argmax(-1), induction.induction_targets(tokens, V))
    assert cert.integer_certificate(cache)
    assert model.cfg.n_layers == 1 and model.cfg.n_heads == N


def test_one_layer_every_sequence() -> None:
    for V in (1, 2, 3):
        for N in (1, 4, 7):
            model = one_layer_induction.build_one_layer_induction(V, N)
            for length in range(1, N + 1):
                tokens = seqs.all_sequences(V, length)
                assert torch.equal(model(tokens).argmax(-1), induction.induction_targets(tokens, V))


@given(S.configs(max_layers=1, max_ctx=7), S.seeds)
def test_layer_one_keys_ignore_previous_token(cfg, seed) -> None:
    """Lemma 2: in block 0, the key at j is a function of (x_j, j) only."""
    if cfg.d_vocab < 2 or cfg.n_ctx < 2:
        return
    model = Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed))
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, cfg.d_vocab, (1, cfg.n_ctx), generator=gen)
    j = int(torch.randint(1, cfg.n_ctx, (1,), generator=gen))
    changed = tokens.clone()
    changed[0, j - 1] = (tokens[0, j - 1] + 1) % cfg.d_vocab
    k1 = model.run_with_cache(tokens)[1]["blocks.0.attn.hook_k"][0, j]
    k2 = model.run_with_cache(changed)[1]["blocks.0.attn.hook_k"][0, j]
    assert torch.equal(k1, k2)


def test_key_blindness_and_its_failure_for_layer_two() -> None:
    assert claims.key_blindness(one_layer_induction.build_one_layer_induction(2, 4))
    model = induction.build_induction_model(2, 4, "hard")
    _, cache = model.run_with_cache(torch.tensor([[2, 0, 1, 0], [2, 1, 1, 0]]))
    assert not torch.equal(cache["blocks.1.attn.hook_k"][0, 2], cache["blocks.1.attn.hook_k"][1, 2])


def test_broken_one_layer_fails() -> None:
    model = one_layer_induction.build_one_layer_induction(2, 6)
    W_out = model.weights()["blocks.0.mlp.W_out"]
    flat = W_out.clone()
    flat[flat != 0] = 1.0  # equal weights: the most recent match no longer dominates
    model.set_weights({"blocks.0.mlp.W_out": flat})
    found = claims.check_two_layers_restated([model])
    assert not found.holds and not found.evidence["one_layer_model_exact"]
    assert claims.check_two_layers_literal([model]).holds


def test_one_layer_bad_input() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        one_layer_induction.build_one_layer_induction(0, 4)
    with pytest.raises(ValueError, match="n_ctx"):
        one_layer_induction.build_one_layer_induction(2, 0)
    with pytest.raises(ValueError, match="n_ctx"):
        one_layer_induction.build_one_layer_induction(2, 51)


# --- the command line ------------------------------------------------------------------------

def test_cli_claims_run(capsys) -> None:
    assert cli.main(["--claim", "worked_example_2.cat_sat", "demo_1.ideal_pattern"]) == 0
    assert "cat_sat" in capsys.readouterr().out


def test_cli_inspect_and_plot(tmp_path, capsys) -> None:
    assert cli.main(["inspect", "induction", "--attention", "hard", "--plot", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "induction head" in out
    for name in ("induction_demo1.png", "induction_cat_sat.png"):
        assert (tmp_path / name).stat().st_size > 1000


@pytest.mark.parametrize("argv", [
    ["inspect", "induction", "--attention", "linear"],
    ["inspect", "induction", "--bogus"],
    ["bench", "induction", "--n-seqs", "0"],
    ["bench", "induction", "--length", "x"],
])
def test_cli_bad_input_one_line_exit_2(argv, capsys) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bench_small(capsys) -> None:
    pytest.importorskip("transformer_lens")
    from verify.benchmarks import induction as bench

    figures = bench.run_benchmark(n_seqs=4, length=16, vocab_size=5, chunk=3)
    assert figures["wrong_predictions"] == 0 and figures["tl_disagreements"] == 0
    assert figures["ours_tokens_per_s"] > 0 and figures["speed_ratio_ours_over_tl"] > 0


@given(st.integers(2, 5))
def test_bench_without_peer(n) -> None:
    from verify.benchmarks import induction as bench

    figures = bench.run_benchmark(n_seqs=2, length=n, vocab_size=3, chunk=1, peer=False)
    assert figures["wrong_predictions"] == 0 and "tl_seconds" not in figures
