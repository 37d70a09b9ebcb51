"""Pruning: DARB and the baselines it is compared with.

``prune`` and ``prune_model`` are the entry points; ``kernels`` holds the numba
code and ``search`` the exact DARB block-size assignment.
"""
from .api import METHODS, SCOPES, check_reachable, from_zeros, prune, prune_model, reachable_ratio
from .result import ModelPruneResult, PruneResult

__all__ = ["METHODS", "SCOPES", "check_reachable", "from_zeros", "prune", "prune_model", "reachable_ratio",
           "PruneResult", "ModelPruneResult"]
