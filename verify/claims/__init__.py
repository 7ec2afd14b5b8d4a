"""One module per group of claims; each registers its checks with `verify.registry.claim`.

A module may also define ``INSPECT = {name: function(argv) -> int}`` for `python -m verify
inspect NAME`.
"""
