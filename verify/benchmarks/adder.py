"""`python -m verify bench adder`: certify every pair of the trig-identity adder, three ways.

For each modulus (default 257 and 1009, every frequency 1..(p-1)//2):

- certificate: `verify.adder_certificate.certify`, sound for all p^2 pairs; its arithmetic is one
  p x 2|K| x p matrix product (O(p^2 |K|)) plus O(size of the weights) structure checks;
- brute force: `verify.adder_pairs.brute_force`, every pair's p logits from the network's
  algebra, with the same soundness argument (O(p^3 |K|), chunked: at most LOGIT_BUDGET logits
  in memory);
- network: the torch forward pass itself on every pair (dense MLP, O(p^2 |K|^2 + p^3 |K|));
  timed on every pair for p <= --network-full-max, else on a sample and extrapolated (marked).

Figures: seconds, flop counts, brute/certificate time ratio, and the fraction of this machine's
float64 dense matmul throughput (measured in the same run) that each method achieves.
"""

from __future__ import annotations

import json
import platform
import time

import torch

from constructions import modular
from verify import adder_pairs
from verify.adder_certificate import certify
from verify.cli_util import OneLineParser
from verify.rounding import LOGIT_BUDGET

MATMUL_N = 1536     # size of the square float64 matmul that measures peak throughput
MATMUL_REPEATS = 3  # best of


def matmul_gflops(n: int = MATMUL_N, repeats: int = MATMUL_REPEATS) -> float:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, dtype=torch.float64, generator=gen)
    b = torch.randn(n, n, dtype=torch.float64, generator=gen)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def network_time(adder: modular.ModularAdder, sample: int | None) -> dict:
    """Seconds for the torch forward on all pairs (sample=None) or extrapolated from a sample."""
    p = adder.p
    if sample is None or sample >= p * p:
        result = adder_pairs.network_all_pairs(adder)
        return {"seconds": result["seconds"], "extrapolated": False, "correct": result["correct"]}
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(0, p * p, (sample,), generator=gen)
    x, y = idx // p, idx % p
    chunk = max(1, LOGIT_BUDGET // (8 * adder.transformer.cfg.d_model))
    start = time.perf_counter()
    correct = True
    with torch.no_grad():
        for i in range(0, sample, chunk):
            logits = adder(x[i:i + chunk], y[i:i + chunk])
            correct &= bool((logits.argmax(1) == (x[i:i + chunk] + y[i:i + chunk]) % p).all())
    seconds = (time.perf_counter() - start) * p * p / sample
    return {"seconds": seconds, "extrapolated": True, "sample_pairs": sample, "correct": correct}


def run(ps: list[int], network_full_max: int, sample: int) -> dict:
    peak = matmul_gflops()
    rows = []
    for p in ps:
        t0 = time.perf_counter()
        adder = modular.build_adder(p)
        build = time.perf_counter() - t0
        cert = certify(adder)
        brute = adder_pairs.brute_force(adder, cert=cert)
        net = network_time(adder, None if p <= network_full_max else sample)
        rows.append({
            "p": p, "K": len(adder.freqs), "pairs": p * p, "build_s": build,
            "certificate_s": cert["seconds"], "certified": cert["certified"],
            "certificate_flops": cert["flops"], "min_margin": cert["min_margin"],
            "error_bound": cert["error_bound"],
            "brute_force_s": brute["seconds"], "brute_force_certified": brute["certified"],
            "brute_force_flops": brute["flops"],
            "network_s": net["seconds"], "network_extrapolated": net["extrapolated"],
            "network_correct": net["correct"],
            "ratio_brute_over_certificate": brute["seconds"] / cert["seconds"],
            "ratio_network_over_certificate": net["seconds"] / cert["seconds"],
            "certificate_structure_s": cert["seconds_structure"],
            "certificate_bounds_s": cert["seconds_bounds"],
            "certificate_margins_s": cert["seconds_margins"],
            "certificate_matmul_fraction": cert["flops"] / cert["seconds"] / 1e9 / peak,
            "margins_step_matmul_fraction": cert["flops"] / cert["seconds_margins"] / 1e9 / peak,
            "brute_force_matmul_fraction": brute["flops"] / brute["seconds"] / 1e9 / peak,
        })
    return {"matmul_gflops": peak, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "machine": platform.machine(), "results": rows}


def main(argv: list[str]) -> int:
    parser = OneLineParser(prog="python -m verify bench adder",
                           description="Certify every pair of the adder: certificate vs brute force.")
    parser.add_argument("--p", type=int, nargs="+", default=[257, 1009], help="moduli (>= 2)")
    parser.add_argument("--network-full-max", type=int, default=257,
                        help="run the torch network on every pair up to this p (default 257)")
    parser.add_argument("--network-sample", type=int, default=4096,
                        help="pairs timed for larger p, then extrapolated (default 4096)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ns = parser.parse_args(argv)
    for p in ns.p:
        if p < 2:
            raise ValueError(f"--p must be >= 2, got {p}")
    if ns.network_sample < 1:
        raise ValueError(f"--network-sample must be >= 1, got {ns.network_sample}")
    report = run(ns.p, ns.network_full_max, ns.network_sample)
    print(f"float64 matmul ({MATMUL_N}^3): {report['matmul_gflops']:.1f} GFLOP/s on "
          f"{report['threads']} threads")
    for r in report["results"]:
        mark = " (extrapolated)" if r["network_extrapolated"] else ""
        print(f"p={r['p']} |K|={r['K']} pairs={r['pairs']}: build {r['build_s']:.2f} s\n"
              f"  certificate  {r['certificate_s']:8.3f} s  certified={r['certified']}  "
              f"margin {r['min_margin']:.4g} > 2 x {r['error_bound']:.3g}  "
              f"({r['certificate_matmul_fraction']:.1%} of matmul peak)\n"
              f"    = structure {r['certificate_structure_s']:.3f} s (O(|W|)) + bounds "
              f"{r['certificate_bounds_s']:.3f} s (O(|W|) + O(p|K|)) + margins "
              f"{r['certificate_margins_s']:.3f} s (O(p^2|K|), "
              f"{r['margins_step_matmul_fraction']:.1%} of matmul peak)\n"
              f"  brute force  {r['brute_force_s']:8.3f} s  certified={r['brute_force_certified']}"
              f"  ({r['brute_force_matmul_fraction']:.1%} of matmul peak)  "
              f"ratio {r['ratio_brute_over_certificate']:.1f}x\n"
              f"  network      {r['network_s']:8.3f} s{mark}  correct={r['network_correct']}  "
              f"ratio {r['ratio_network_over_certificate']:.1f}x")
    if ns.json:
        with open(ns.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


BENCHMARKS = {"adder": main}
