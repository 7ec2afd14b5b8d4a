"""The grokking experiment (section 3, Theorem 3.1; claims grokking.phases,
grokking.memorization_norm, grokking.generalization_norm).

Modules: ``models`` (Demo 2's TinyModel and a Nanda et al. 2023 one-layer transformer),
``train`` (seeded full-batch AdamW training with logging, Grokfast, checkpoints), ``metrics``
(weight norms, Fourier sparsity, restricted/excluded loss), ``phases`` (the phase detector),
``plot`` (the PNG), ``sweep`` (the hyperparameter sweep), ``runio`` (the JSON schema).
"""
