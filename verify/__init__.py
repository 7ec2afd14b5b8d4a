"""Checks for every claim of the section, the claim registry and the command line.

``python -m verify`` runs every fast claim; ``verify.registry`` holds the claims.
"""
