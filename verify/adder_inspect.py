"""`python -m verify inspect adder`: the trig-identity adder's weights, one frequency block, its
logits on a few pairs and its certificate (display only; claims in verify/claims/modular.py)."""

from __future__ import annotations

import torch

from constructions import modular
from constructions.modular import NEURONS_PER_FREQ
from verify.adder_certificate import certify
from verify.cli_util import OneLineParser
from verify.display import matrix


def inspect_adder(argv: list[str]) -> int:
    parser = OneLineParser(prog="python -m verify inspect adder",
                           description="Weights of the trig-identity adder, one frequency block.")
    parser.add_argument("--p", type=int, default=5, help="modulus (>= 2), default 5")
    parser.add_argument("--freqs", type=int, nargs="+", default=None,
                        help="frequencies (default: every 1..(p-1)//2)")
    ns = parser.parse_args(argv)
    adder = modular.build_adder(ns.p, ns.freqs)
    m = len(adder.freqs)
    w = adder.transformer.weights()
    s = modular.slots(m)
    print(f"adder p={adder.p} K={list(adder.freqs)[:12]}{' ...' if m > 12 else ''} "
          f"(|K|={m}); d_model={6 * m} d_mlp={8 * m}; attention scores 0 -> pattern (1/2, 1/2)")
    rows = [f"x={x}" for x in range(min(adder.p, 8))]
    print(matrix("W_E rows (cos w1 x, sin w1 x) of frequency k1", w["embed.W_E"][:8, :2], rows,
                 ["cos", "sin"]))
    read = torch.stack([s["S_cos"][0], s["S_sin"][0], s["B_cos"][0], s["B_sin"][0]])
    neurons = [f"n{j}" for j in range(NEURONS_PER_FREQ)]
    print(matrix("W_in block of k1 (rows S_cos S_sin B_cos B_sin)",
                 w["blocks.0.mlp.W_in"][read][:, :NEURONS_PER_FREQ],
                 ["S_cos", "S_sin", "B_cos", "B_sin"], neurons))
    out = torch.stack([s["O_cos"][0], s["O_sin"][0]])
    print(matrix("W_out block of k1 (to O_cos, O_sin)",
                 w["blocks.0.mlp.W_out"][:NEURONS_PER_FREQ][:, out], neurons, ["O_cos", "O_sin"]))
    x = torch.arange(min(adder.p, 8))
    logits = adder(x, torch.zeros_like(x))
    print(matrix("logits for (a, 0)", logits[:, :8], rows,
                 [f"c={c}" for c in range(8)][:logits.shape[1]]))
    cert = certify(adder)
    print(f"certificate: min margin {cert['min_margin']:.6g} > 2 x error bound "
          f"{cert['error_bound']:.3g}: {cert['certified']}")
    return 0
