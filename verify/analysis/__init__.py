"""Analysis of any TransformerLens-style model: head scores, composition, ablations.

load.py: a model from our Transformer, a HookedTransformer, or a folder (config.json +
model.safetensors); scores.py: per-head previous-token, duplicate-token, induction and copying
scores; composition.py: Q-, K-, V-composition with random baselines (Elhage et al. 2021);
ablation.py: zero- and mean-ablation of each head; report.py: all of it as one JSON object.
"""
