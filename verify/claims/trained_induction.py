"""Induction heads in trained models (section 2's title and its "primary mechanism" sentence).

Claims ``induction.formation`` and ``induction.primary_icl_mechanism`` (proofs/induction-training.md).
Evidence: small models trained by verify/formation on its task (global bigrams + a copied
segment at a random place and distance, after Bietti et al. 2023), each configuration trained
once per process (`trained_run` is cached) and shared by both claims.

formation
- literal: in every one of >= 3 seeds, a two-layer attention-only model has a previous-token
  head in layer 0 and an induction head in layer 1 (each scoring >= HEAD_MIN, ~8x chance), the
  induction head K-composing with the previous-token head above the random baseline by
  >= COMPOSITION_SIGMAS standard deviations (Elhage et al. 2021);
- restated (proofs/): in every one of >= 3 seeds an induction head (>= HEAD_MIN) forms in layer
  1 at a phase change (the induction score jumps) during which the ICL score changes too
  (Olsson et al. 2022), composed with some layer-0 head above the random baseline by
  >= COMPOSITION_SIGMAS standard deviations through its keys (K, the section's previous-token
  route) or its queries (Q: e.g. a duplicate-token head telling the query where the earlier
  occurrence is, which seed 2 of the default runs uses). The diagonal share of the QK circuit
  read through the previous-token head's OV circuit (the construction: 1; chance 1/V) is
  reported beside it.
primary_icl_mechanism
- literal (the sentence taken as it stands, for any model that learns in context): every model
  whose ICL score is <= -ICL_MIN (the context lowers its loss by ICL_MIN nats or more) loses
  >= PRIMARY_SHARE of it when its induction heads are mean-ablated; the one-layer controls,
  which learn in context with no induction head, are models too;
- restated (proofs/): on the two-layer models, mean-ablating the induction heads removes
  >= PRIMARY_SHARE of the ICL score, more than ablating any single other head outside the
  circuit (the previous-token head belongs to it), and one-layer models of about equal
  parameter count (attention-only, and with a ReLU MLP) trained with the same budget reach less
  than CONTROL_SHARE of the two-layer ICL score. Measured on this task and size only.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from constructions.transformer import Transformer
from verify.analysis import ablation, composition, scores
from verify.formation import compare, runio, train
from verify.formation.task import Batch, TaskConfig, sample
from verify.registry import Finding, claim

SEEDS = (0, 1, 2)
MIN_SEEDS = 3
HEAD_MIN = 0.3            # share of attention on targets; uniform attention scores ~0.04 here
COMPOSITION_SIGMAS = 3.0  # K-composition above the random baseline's mean by this many std
ICL_MIN = 0.2             # nats: an ICL score smaller than this is "no in-context learning"
PRIMARY_SHARE = 0.5       # "primary": ablating the induction heads removes at least half
CONTROL_SHARE = 0.5       # one-layer controls reach less than half the two-layer ICL score


def mlp_width(cfg: train.TrainConfig) -> int:
    """d_mlp giving one MLP about the parameters of one attention layer:
    attention 4 h d e + 3 h e + d (W_Q, W_K, W_V, W_O and biases), MLP 2 d m + m + d."""
    h, d, e = cfg.n_heads, cfg.d_model, cfg.d_head
    return round((4 * h * d * e + 3 * h * e) / (2 * d + 1))


@functools.cache
def trained_run(n_layers: int, seed: int, mlp: bool = False) -> dict[str, Any]:
    """One summarized run of the default configuration (cached: trained once per process)."""
    base = train.TrainConfig()
    cfg = train.TrainConfig(n_layers=n_layers, seed=seed,
                            d_mlp=mlp_width(base) if mlp else None)
    return runio.summarize(train.train(cfg))


def eval_batch(task: TaskConfig | None = None) -> Batch:
    """The held-out task sequences every run is evaluated on."""
    task = TaskConfig() if task is None else task
    return sample(task, train.EVAL_SEQS, torch.Generator().manual_seed(train.EVAL_SEED))


@dataclass(frozen=True)
class Circuit:
    """What `measure_circuit` finds in a model with >= 2 layers."""

    previous_token: tuple[int, int, float]   # (layer, head, score), best in layer 0
    induction: tuple[int, int, float]        # best in the last layer
    k_composition: float                     # previous-token head -> induction head
    baseline_mean: float
    baseline_std: float
    diagonal_share: float                    # through the previous-token head's OV
    best_diagonal_share: float = 0.0         # through the best layer-0 head's OV
    best_composition: float = 0.0            # max over layer-0 heads of K- and Q-composition


def measure_circuit(model: Transformer, *, seed: int = train.EVAL_SEED + 1) -> Circuit:
    """Best previous-token head (layer 0), best induction head (last layer), their K-composition
    and the construction comparison, on repeated random tokens."""
    if model.cfg.n_layers < 2:
        raise ValueError("model must have >= 2 layers for an induction circuit")
    head = scores.head_scores(model, scores.probe_tokens(model.cfg, seed=seed), copying=False)
    last = model.cfg.n_layers - 1
    p = max(range(model.cfg.n_heads), key=lambda h: head[0][h]["previous_token"])
    i = max(range(model.cfg.n_heads), key=lambda h: head[last][h]["induction"])
    base = composition.baseline(model.cfg.d_model, model.cfg.d_head)
    shares = [compare.diagonal_share(compare.token_qk_through_ov(
        model, (0, h), (last, i), model.cfg.d_vocab - 1)) for h in range(model.cfg.n_heads)]
    return Circuit((0, p, head[0][p]["previous_token"]), (last, i, head[last][i]["induction"]),
                   composition.pair(model, 0, p, last, i, "k"), base["mean"], base["std"],
                   shares[p], max(shares),
                   max(composition.pair(model, 0, h, last, i, kind)
                       for h in range(model.cfg.n_heads) for kind in ("k", "q")))


def _circuit_holds(c: Circuit) -> dict[str, bool]:
    return {"previous_token_head": c.previous_token[2] >= HEAD_MIN,
            "induction_head": c.induction[2] >= HEAD_MIN,
            "k_composed": c.k_composition >= c.baseline_mean + COMPOSITION_SIGMAS * c.baseline_std}


def _default_circuits() -> list[Circuit]:
    return [measure_circuit(trained_run(2, s)["model"]) for s in SEEDS]


def check_formation_literal(circuits: Sequence[Circuit] | None = None,
                            min_seeds: int = MIN_SEEDS) -> Finding:
    """Every seed's model has the two heads, K-composed above the baseline; >= min_seeds seeds."""
    circuits = _default_circuits() if circuits is None else list(circuits)
    per = [_circuit_holds(c) for c in circuits]
    holds = len(circuits) >= min_seeds and all(all(p.values()) for p in per)
    return Finding(holds, {"seeds": len(circuits), "min_seeds": min_seeds, "conditions": per,
                           "circuits": [c.__dict__ for c in circuits], "head_min": HEAD_MIN,
                           "composition_sigmas": COMPOSITION_SIGMAS})


def check_formation_restated(circuits: Sequence[Circuit] | None = None,
                             phases: Sequence[dict[str, Any]] | None = None,
                             min_seeds: int = MIN_SEEDS) -> Finding:
    """Induction head, phase change with the ICL change, K- or Q-composed with layer 0."""
    if circuits is None:
        circuits = _default_circuits()
    if phases is None:
        phases = [trained_run(2, s)["phase"] for s in SEEDS]
    if len(phases) != len(circuits):
        raise ValueError("circuits and phases must have one entry per seed")
    per = [{"induction_head": c.induction[2] >= HEAD_MIN,
            "phase_change": ph["step"] is not None,
            "icl_coincides": bool(ph["icl_coincides"]),
            "composed": c.best_composition >= c.baseline_mean
            + COMPOSITION_SIGMAS * c.baseline_std}
           for c, ph in zip(circuits, phases)]
    holds = len(circuits) >= min_seeds and all(all(p.values()) for p in per)
    return Finding(holds, {"seeds": len(circuits), "conditions": per,
                           "phase_change_steps": [ph["step"] for ph in phases],
                           "icl_change_steps": [ph["icl_step"] for ph in phases],
                           "best_k_or_q_composition": [c.best_composition for c in circuits],
                           "diagonal_shares": [c.diagonal_share for c in circuits]})


def induction_heads(model: Transformer) -> list[tuple[int, int]]:
    """Heads in layers >= 1 whose induction score is >= HEAD_MIN (none in a one-layer model)."""
    head = scores.head_scores(model, scores.probe_tokens(model.cfg, seed=train.EVAL_SEED + 1),
                              copying=False)
    return [(layer, h) for layer in range(1, model.cfg.n_layers)
            for h in range(model.cfg.n_heads) if head[layer][h]["induction"] >= HEAD_MIN]


def icl_score(model: Transformer, batch: Batch, task: TaskConfig) -> float:
    return train.evaluate(model, task, batch)["icl_score"]


def share_removed(model: Transformer, heads: Sequence[tuple[int, int]], batch: Batch,
                  task: TaskConfig) -> float:
    """1 - ICL(ablated) / ICL(clean), mean-ablating ``heads`` together (0 for no heads)."""
    clean = icl_score(model, batch, task)
    ablated = model
    for layer, h in heads:
        ablated = ablation.ablate(ablated, layer, h, "mean", batch.tokens)
    return 1 - icl_score(ablated, batch, task) / clean


def measure_icl(model: Transformer, batch: Batch | None = None,
                task: TaskConfig | None = None) -> dict[str, Any]:
    """ICL score, induction heads, the share removed by ablating them and by each other head."""
    task = TaskConfig() if task is None else task
    batch = eval_batch(task) if batch is None else batch
    ind = induction_heads(model)
    out: dict[str, Any] = {"icl_score": icl_score(model, batch, task), "induction_heads": ind,
                           "share_removed_by_induction_heads":
                               share_removed(model, ind, batch, task)}
    out["share_removed_per_head"] = {
        f"{layer}.{h}": share_removed(model, [(layer, h)], batch, task)
        for layer in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)}
    out["acc_repeated"] = train.evaluate(model, task, batch)["acc_repeated"]
    return out


def _default_models() -> tuple[list[Transformer], list[Transformer]]:
    two = [trained_run(2, s)["model"] for s in SEEDS]
    controls = [trained_run(1, SEEDS[0])["model"], trained_run(1, SEEDS[0], mlp=True)["model"]]
    return two, controls


def check_primary_literal(models: Sequence[Transformer] | None = None,
                          controls: Sequence[Transformer] | None = None,
                          task: TaskConfig | None = None) -> Finding:
    """Every model that learns in context (ICL score <= -ICL_MIN) owes >= PRIMARY_SHARE of it to
    its induction heads."""
    if models is None or controls is None:
        two, ctl = _default_models()
        models = two if models is None else models
        controls = ctl if controls is None else controls
    found = [measure_icl(m, task=task) for m in [*models, *controls]]
    learners = [f for f in found if f["icl_score"] <= -ICL_MIN]  # the context lowers the loss
    per = [f["share_removed_by_induction_heads"] >= PRIMARY_SHARE for f in learners]
    holds = bool(learners) and all(per)
    return Finding(holds, {"models": len(models), "controls": len(controls),
                           "icl_scores": [f["icl_score"] for f in found],
                           "shares_removed": [f["share_removed_by_induction_heads"]
                                              for f in found],
                           "learners_meeting_share": per, "icl_min": ICL_MIN,
                           "primary_share": PRIMARY_SHARE})


def check_primary_restated(models: Sequence[Transformer] | None = None,
                           controls: Sequence[Transformer] | None = None,
                           task: TaskConfig | None = None) -> Finding:
    """Two-layer models: induction heads remove >= PRIMARY_SHARE, more than any other single head
    outside the circuit; controls reach < CONTROL_SHARE of the two-layer ICL score."""
    defaults = models is None and controls is None
    if models is None or controls is None:
        two, ctl = _default_models()
        models = two if models is None else models
        controls = ctl if controls is None else controls
    if not models:
        raise ValueError("models must hold at least one two-layer model")
    rows = []
    for m in models:
        f = measure_icl(m, task=task)
        circuit = {f"{layer}.{h}" for layer, h in f["induction_heads"]}
        circuit.add(f"0.{measure_circuit(m).previous_token[1]}")
        rows.append({**f, "circuit": sorted(circuit)})
    measured = [measure_icl(c, task=task) for c in controls]
    found = primary_conditions(rows, [c["icl_score"] for c in measured])
    return Finding(found["holds"], {**found, "two_layer": rows,
                                    "controls": [{"icl_score": c["icl_score"],
                                                  "acc_repeated": c["acc_repeated"]}
                                                 for c in measured],
                                    "control_share": CONTROL_SHARE,
                                    "two_layers_required_evidence": two_layer_evidence()
                                    if defaults else None})


def primary_conditions(rows: Sequence[dict[str, Any]], control_icl: Sequence[float]
                       ) -> dict[str, Any]:
    """The restated conditions from measurements: each row (a two-layer model) has
    "share_removed_by_induction_heads", "share_removed_per_head" and "circuit" (head names)."""
    if not rows:
        raise ValueError("rows must hold at least one two-layer model's measurements")
    per = []
    for r in rows:
        others = [v for k, v in r["share_removed_per_head"].items() if k not in r["circuit"]]
        top = max(others, default=0.0)
        per.append({"primary": r["share_removed_by_induction_heads"] >= PRIMARY_SHARE,
                    "beats_other_heads": r["share_removed_by_induction_heads"] > top,
                    "largest_other_share": top})
    two_icl = sum(abs(r["icl_score"]) for r in rows) / len(rows)
    below = [abs(c) < CONTROL_SHARE * two_icl for c in control_icl]
    holds = all(p["primary"] and p["beats_other_heads"] for p in per) and all(below)
    return {"holds": holds, "per_model": per, "two_layer_mean_icl": two_icl,
            "controls_below_share": below}


def two_layer_evidence() -> dict[str, Any]:
    """Accuracy on the copied tokens: one layer vs two, same budget, and the bigram baseline."""
    runs = {"two_layer_attn_only": [trained_run(2, s) for s in SEEDS],
            "one_layer_attn_only": [trained_run(1, SEEDS[0])],
            "one_layer_with_mlp": [trained_run(1, SEEDS[0], mlp=True)]}
    out: dict[str, Any] = {k: [{"seed": r["config"]["seed"], "parameters": r["parameters"],
                                "acc_repeated": r["history"][-1]["acc_repeated"],
                                "loss_repeated": r["history"][-1]["loss_repeated"],
                                "icl_score": r["history"][-1]["icl_score"]} for r in v]
                           for k, v in runs.items()}
    out["bigram_baseline"] = runs["two_layer_attn_only"][0]["bigram_baseline"]
    out["steps"] = runs["two_layer_attn_only"][0]["config"]["steps"]
    return out


formation = claim("induction.formation", source="section 2 (title)", slow=True,
                  statement="a trained two-layer attention-only model forms a previous-token head "
                  "and a K-composed induction head")
formation.literal(check_formation_literal)
formation.restated(check_formation_restated)

primary = claim("induction.primary_icl_mechanism", source="section 2", slow=True,
                statement="induction heads are the primary mechanism for in-context learning")
primary.literal(check_primary_literal)
primary.restated(check_primary_restated)
