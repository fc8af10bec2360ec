"""DSnoT (Zhang et al., ICLR 2024): training-free refinement of a pruned layer's mask.

"Dynamic Sparse No Training" keeps the weights and the sparsity of a pruned linear layer and only
moves its mask: within every output row it swaps a pruned weight back in (*grow*) for a kept one
(*prune*), one pair per cycle, so that the expected reconstruction error of the row,

    e_r = E[W_r x] - E[(M_r * W_r) x] = sum over pruned j of W_rj * E[x_j],

moves towards zero. By default only per-feature statistics of the calibration inputs are
needed: the mean ``E[x_j]`` and the variance ``Var(x_j)`` (the Wanda norm ``||x_j||_2`` follows
from both); ``objective="mse_full"`` also needs the second-moment matrix ``E[x x^T]``.

Criteria (those of the paper and of its reference implementation, ``zyxxmu/DSnoT``):

* growing: among pruned weights whose contribution ``c_rj = W_rj * E[x_j]`` has the sign of
  ``e_r`` (reviving them lowers ``|e_r|``), the largest ``|c_rj| / Var(x_j) ** variance_power``
  (a large expected gain on a steady input);
* pruning: among kept weights whose contribution has the opposite sign (removing them also moves
  ``e_r`` towards zero), the smallest Wanda importance ``|W_rj| * ||x_j||_2``; for an N:M pattern
  the candidate must sit in the same group of M as the grown weight, so every group keeps its
  count of zeros;
* update: ``e_r <- e_r - c_grow + c_prune`` after each swap;
* stopping: a row stops once ``|e_r| <= update_threshold``, when it runs out of candidates, after
  ``max_cycles`` cycles in all, and once the next swap would not lower its error. That error is,
  by default (``objective="mse"``), the expected squared output error per token,
  ``e^2 + sum_j d_rj^2 Var(x_j)`` with ``d`` the pruned weights, so that a swap that lowers the
  mean but adds more variance is not made; ``objective="mse_full"`` measures the same squared
  error exactly, ``d_r^T E[x x^T] d_r``, from the inputs' second-moment matrix (their
  correlations included); ``objective="mean"`` compares ``|e_r|`` alone, and
  ``keep_sign`` also stops a row whose error would change sign (the paper's rule). The reference
  implementation's unstructured path makes every swap until the threshold or the last cycle.
  With ``agree_halves`` the swap must also lower that error computed from the statistics of the
  even-numbered calibration sequences alone, and from those of the odd-numbered ones alone:
  a swap that only one half supports follows that half's sampling noise, not the data.

Each weight changes side at most once (the candidate lists are ranked once, as in the reference),
so the number of zeros of every row (and of every N:M group) is exactly that of the input mask.
Rows are processed together with torch; statistics are float32 whatever the weight dtype.

As in the reference, the error compared with ``update_threshold`` is summed over the tokens of a
calibration sequence (``tokens_per_sequence`` times the per-token mean), so the paper's
threshold keeps its meaning. The cost is a few sorts of every row plus ``max_cycles`` vectorised
steps: linear in the weights, no backpropagation (``"mse_full"`` adds one product of the weights
with the in_features x in_features second-moment matrix per layer).
"""

from __future__ import annotations

from dataprune.model_pruning.dsnot.config import OBJECTIVES, SKIPS, DSnoTConfig
from dataprune.model_pruning.dsnot.error import expected_reconstruction_error
from dataprune.model_pruning.dsnot.refiner import DSnoTRefiner  # registers "dsnot"
from dataprune.model_pruning.dsnot.swaps import dsnot_refine_mask

__all__ = [
    "OBJECTIVES",
    "SKIPS",
    "DSnoTConfig",
    "DSnoTRefiner",
    "dsnot_refine_mask",
    "expected_reconstruction_error",
]
