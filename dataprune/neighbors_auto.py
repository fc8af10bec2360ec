"""``method="auto"`` of :func:`dataprune.neighbors.knn_graph`: the cell self-join when a sample
says it is accurate enough, else the recall-tuned HNSW graph.

The cell self-join (:func:`dataprune.cell_join.cell_join_knn`) is several times faster than HNSW
on this kind of CPU (large bfloat16 matrix products instead of graph walks) and exact within the
cells it probes, so its recall depends on how well the data's neighbourhoods follow the coarse
cells: in ``benchmarks/knn_scale.py`` (300k rows, k = 32) it reached recall@k 0.99 on clustered
embeddings in a fifth of HNSW's time, but 0.52 on structureless low-rank data, where HNSW (with
its efSearch tuned) reaches 0.95. No fixed rule tells the two apart in advance, so ``"auto"``
checks on a seeded sample of rows searched exactly, twice. Before the join: the cells' centroids
are trained and the share of the sample's exact neighbours that the join would score at all
(stored in a cell probed for the row's own cell, :func:`dataprune.cell_join.cell_candidate_recall`)
is computed from the cells of those rows alone; it bounds the join's recall from above, so when it
is below ``target_recall`` by more than two standard errors the join is skipped. After the join:
the graph is kept when the sample's recall less two standard errors reaches ``target_recall``.
Otherwise the HNSW graph is built (its efSearch tuning reuses the same exact sample). The bound
costs the k-means training and the sample's cells; it is first computed a quarter of the way
through the k-means (:data:`CHECK_NITER`), so data far from the target (structureless rows) pays
only that quarter (on 1M low-rank rows in ``benchmarks/knn_scale.py`` the whole check, exact
sample included, took 32.9 s with the full k-means, where the cell join itself would have been
wasted).
"""

from __future__ import annotations

import logging
import time

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["CHECK_MARGIN", "CHECK_NITER", "auto_knn"]

#: The bound is first computed after ``CHECK_NITER`` of the centroids' k-means iterations; the
#: join is skipped there when the bound is below the target by more than ``CHECK_MARGIN`` (plus
#: two standard errors), else the k-means goes on to its full iterations (the same centroids as
#: training them at once) and the bound is computed again. Measured (k = 32, 2,000 sampled rows):
#: the bound after 5 and after 20 iterations differed by at most 0.003 (low-rank 100k and 300k
#: rows of ``benchmarks/knn_scale.py``: 0.641 / 0.638 and 0.465 / 0.463; 50,000 uniform 24-d
#: rows, k = 10: 0.808 / 0.806; clustered: 1.0 both), so a margin of 0.05 never skips a join
#: the full k-means would have run; the skip saves three quarters of the k-means.
CHECK_NITER = 5
CHECK_MARGIN = 0.05


def auto_knn(
    X: np.ndarray,
    k: int,
    *,
    target_recall: float = 0.95,
    random_state: int = 0,
    block_size: int = 16384,
    show_progress_bar: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """kNN graph of ``X`` (float32, C-contiguous, ``1 <= k < n``): cells, checked, else HNSW.

    Parameters
    ----------
    X : ndarray of shape (n_samples, dim), float32
        Rows, ideally L2-normalised (inner-product neighbours).
    k : int
        Neighbours per row.
    target_recall : float, default=0.95
        Recall@k the cells' sample must reach (less two standard errors), and the HNSW tuning's
        target when they do not.
    random_state : int, default=0
        Seeds the cell centroids and the recall sample.
    block_size : int, default=16384
        Query rows per HNSW search call.
    show_progress_bar : bool, optional
        ``None`` follows the log level.

    Returns
    -------
    sims, idx : ndarray of shape (n_samples, k)
        As :func:`~dataprune.neighbors.knn_graph`.
    info : dict
        ``method`` ("auto"), ``chosen`` ("cells" or "hnsw"), ``cells`` (its parameters,
        ``candidate_recall`` and ``candidate_recall_se`` (the bound, last computed after
        ``candidate_recall_niter`` k-means iterations: :data:`CHECK_NITER` when it skipped the
        join early, else the full :data:`~dataprune.cell_join.CELL_NITER`), ``sample_recall`` and
        ``sample_recall_se`` (when the join ran), ``time_s``) and, when HNSW ran, ``hnsw`` (its
        info, see :func:`~dataprune.neighbors_hnsw.hnsw_knn`).
    """
    from dataprune.cell_join import (
        CELL_NITER,
        cell_candidate_recall,
        cell_join_knn,
        resolve_cell_params,
        train_cells,
    )
    from dataprune.neighbors import exact_knn_rows
    from dataprune.neighbors_hnsw import recall_sample_rows, sample_recall

    n = X.shape[0]
    t0 = time.perf_counter()
    params = resolve_cell_params(n)
    rows = recall_sample_rows(n, random_state)
    truth = exact_knn_rows(X, rows, k)[1]
    cells: dict[str, object] = {**params, "n_sample": len(rows)}
    centroids, done = None, 0
    if params["nlist"] > 1:  # the share of neighbours the cells would score at all
        for stop, margin in ((CHECK_NITER, CHECK_MARGIN), (CELL_NITER, 0.0)):
            centroids = train_cells(
                X, params["nlist"], niter=stop - done, random_state=random_state,
                init_centroids=centroids,
            )  # fmt: skip
            done = stop
            covered = cell_candidate_recall(
                X, centroids, rows, truth, nprobe=params["nprobe"], spill=params["spill"]
            )
            bound = float(covered.mean())
            bound_se = float(covered.std(ddof=1) / np.sqrt(len(rows))) if len(rows) > 1 else 0.0
            cells.update(
                candidate_recall=round(bound, 4),
                candidate_recall_se=round(bound_se, 4),
                candidate_recall_niter=done,
            )
            if bound + 2.0 * bound_se + margin < target_recall:  # the join cannot reach it
                cells["time_s"] = round(time.perf_counter() - t0, 2)
                logger.info(
                    "kNN auto: the cells (k-means, %d iterations) would score %.3f of the "
                    "sampled neighbours (below %.2f); building the HNSW graph without the cell "
                    "join", done, bound, target_recall,
                )  # fmt: skip
                return _hnsw(X, k, target_recall, random_state, block_size, show_progress_bar,
                             rows, truth, cells)  # fmt: skip
    sims, idx = cell_join_knn(
        X, k, random_state=random_state, show_progress_bar=show_progress_bar, centroids=centroids
    )
    recall, se = sample_recall(idx[rows], truth)
    cells.update(
        sample_recall=round(recall, 4),
        sample_recall_se=round(se, 4),
        time_s=round(time.perf_counter() - t0, 2),
    )
    if recall - 2.0 * se >= target_recall:
        logger.info(
            "kNN auto: cells kept (recall@%d of %d sampled rows %.3f)", k, len(rows), recall
        )
        return sims, idx, {"method": "auto", "chosen": "cells", "cells": cells}
    logger.info(
        "kNN auto: cells' sampled recall@%d %.3f is below %.2f; building the HNSW graph",
        k,
        recall,
        target_recall,
    )
    del sims, idx
    return _hnsw(
        X, k, target_recall, random_state, block_size, show_progress_bar, rows, truth, cells
    )


def _hnsw(
    X: np.ndarray,
    k: int,
    target_recall: float,
    random_state: int,
    block_size: int,
    show_progress_bar: bool | None,
    rows: np.ndarray,
    truth: np.ndarray,
    cells: dict[str, object],
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """The HNSW graph, its tuning reusing the exact sample; the info of ``"auto"``."""
    from dataprune.neighbors_hnsw import hnsw_knn

    sims, idx, hinfo = hnsw_knn(
        X,
        k,
        target_recall=target_recall,
        random_state=random_state,
        block_size=block_size,
        show_progress_bar=show_progress_bar,
        tune_truth=(rows, truth),
    )
    return sims, idx, {"method": "auto", "chosen": "hnsw", "cells": cells, "hnsw": hinfo}
