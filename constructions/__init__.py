"""Hand-built transformer circuits: pure builders returning TransformerLens-named weights.

This package never imports ``verify``. Modules: ``transformer`` (the model), ``circuits``
(QK/OV and path terms), ``exact`` (the SymPy mirror), ``tiny_mlp`` (Demo 2's network), and one
module per construction (``induction``, ``modular``, ...).
"""
