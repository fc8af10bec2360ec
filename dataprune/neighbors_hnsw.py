"""The HNSW kNN graph of :func:`dataprune.neighbors.knn_graph`, with ``efSearch`` tuned to a recall
target on a sample of rows searched exactly.

Why tuned: the ``efSearch`` that reaches a given recall depends on the data far more than on its
size. In ``benchmarks/knn_scale.py`` (k = 32) the tuning picked ``efSearch`` 62, 78 and 107 at
100k, 300k and 1M rows of structureless low-rank data (over 24 principal components, see below),
but 107 and 264 at 100k and 300k rows of clustered embeddings (tight sub-clusters whose members are almost equidistant); no fixed
rule is right for both. So the graph is built once, a seeded sample of rows is searched exactly (a
small matrix product against all rows), and ``efSearch`` is raised step by step until the sample's
recall@k reaches the target; every row is then searched with it.

When few principal components hold most of the variance, the graph is built over them and each
row's ``efSearch`` candidates are re-scored exactly in the full space
(:mod:`dataprune.neighbors_projection`); the tuning measures recall after the re-scoring.

Why the projected rows are stored as 8-bit codes (faiss ``IndexHNSWSQ``, ``QT_8bit``, each
dimension's range trained on all rows): a graph search waits on memory more than on arithmetic.
Each distance it computes fetches the vector of a node from a random place, and at 1M rows the
vectors and link lists (96 MB + 256 MB over 24 components) do not stay in this machine's cache.
Codes of 24 bytes instead of 96 make the fetches cheaper, and since every
candidate is re-scored exactly in the full space, the coarser distances only steer the search.
Measured once (scratch script, 1M low-rank rows of ``benchmarks/knn_scale.py`` over 24
components, k = 32, same session): recall@32 after re-scoring 0.9545 against 0.9543 at efSearch
107 (0.9447 / 0.9441 at 96, 0.9641 / 0.9636 at 120); searching 100,000 rows took 12.2 s against
18.7 s (11.8 / 15.3 s at 96), the build 72 s against 91 s. 4-bit codes lost recall (0.868 at
107), 6-bit codes a little (0.951 at 107; timed in another run, so no speed is compared).
"""

from __future__ import annotations

import logging
import math

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "HNSW_EF_RESOLUTION",
    "HNSW_EF_STEPS",
    "default_hnsw_params",
    "deterministic_parallel_build",
    "hnsw_knn",
    "locality_order",
    "recall_sample_rows",
    "sample_recall",
]

#: ``efSearch`` candidates, as multiples of ``k + 1``, tried in order by the tuning; half steps
#: from 2 to 4, where tuned values fall on most data: a step costs one search of the 2,000-row
#: sample, an overshoot a slower search of every row.
HNSW_EF_STEPS: tuple[float, ...] = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 12.0, 16.0)
#: Once a step reaches the target, ``efSearch`` is bisected between it and the step before down
#: to ``(k + 1) / HNSW_EF_RESOLUTION`` (two or three more searches of the sample).
HNSW_EF_RESOLUTION = 8
#: :func:`locality_order`: rows per cell, and the fewest rows it is used for.
LOCALITY_CELL_ROWS = 1000
LOCALITY_MIN_ROWS = 50_000
#: rows searched exactly to estimate recall while tuning ``efSearch``.
HNSW_TUNE_SAMPLE = 2000


def default_hnsw_params(
    n_samples: int, k: int, *, ef_search: int | None = None, target_recall: float = 0.95
) -> dict[str, object]:
    """Default faiss HNSW parameters of :func:`~dataprune.neighbors.knn_graph`.

    ``M = 32`` links per node and ``efConstruction = 40`` (faiss's defaults for
    ``IndexHNSWFlat``). ``efSearch``: the value given (at least ``k + 1``), else ``"auto"``: the
    first of ``(k + 1) * HNSW_EF_STEPS`` (rounded up) whose recall@k on a seeded sample of
    ``min(n_samples, 2000)`` rows, searched exactly, less two standard errors, reaches
    ``target_recall`` (the last step when none does), then bisected down between that step and
    the one before to a resolution of ``(k + 1) / 8`` (every value kept has reached the target
    itself).

    Parameters
    ----------
    n_samples : int
        Rows in the graph.
    k : int
        Neighbours per row.
    ef_search : int, optional
        Fixed ``efSearch`` instead of the tuning (raised to ``k + 1`` when smaller).
    target_recall : float, default=0.95
        Recall@k the tuning aims for.

    Returns
    -------
    dict
        ``M``, ``efConstruction``, ``efSearch`` (int, or ``"auto"``), ``ef_candidates`` (the
        tuning's steps, empty when fixed), ``target_recall`` and ``n_tune_samples``.
    """
    steps = [math.ceil(m * (k + 1)) for m in HNSW_EF_STEPS]
    fixed = ef_search is not None
    return {
        "M": 32,
        "efConstruction": 40,
        "efSearch": int(max(k + 1, ef_search)) if fixed else "auto",
        "ef_candidates": [] if fixed else list(dict.fromkeys(steps)),
        "target_recall": float(target_recall),
        "n_tune_samples": 0 if fixed else int(min(n_samples, HNSW_TUNE_SAMPLE)),
    }


def deterministic_parallel_build() -> bool:
    """Whether faiss builds the same HNSW graph with any number of threads.

    faiss 1.15 made its lock-free deterministic insertion the only HNSW build (faiss pull
    requests #5486 and #5611: the graph is byte-identical across builds and thread counts), so
    the graph is built with all threads (at 300k projected rows: 10.8 s on 2 threads against
    23.4 s on one, the same graph). Earlier versions insert in an unspecified order when
    threaded, or have the deterministic build only behind the ``hnsw_deterministic_build``
    flag; the graph is then built with one thread.
    """
    import faiss

    cvar = getattr(faiss, "cvar", None)
    return hasattr(faiss, "hnsw_add_vertices_deterministic") and not hasattr(
        cvar, "hnsw_deterministic_build"
    )


def locality_order(Z: np.ndarray, *, random_state: int = 0) -> np.ndarray | None:
    """A renumbering of the rows that puts the rows of one k-means cell next to each other.

    A graph search spends its time fetching the vectors and link lists of the nodes it visits;
    renumbered so that nearby rows have nearby numbers (``IndexHNSW.permute_entries``: the same
    graph) and searched row after row in that order, consecutive searches visit the same memory.
    Measured once outside the benchmark (a scratch script, same graph with float32 rows, before
    the 8-bit codes, and an earlier 10-iteration k-means ordering; same 200,000 query rows of 1M
    projected low-rank rows, 24-d): 1.22 times as fast (1.1 times at 300k rows, where vectors
    and links fit this machine's 300 MiB last-level cache anyway). The ordering itself (the
    20-iteration :func:`~dataprune.cell_join.train_cells` k-means and the assignment) took 1.3 s
    and 1.1 s on those 1M rows.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, dim), float32
        The rows the graph is built over (few dimensions: the k-means is cheap).
    random_state : int, default=0
        Seeds the k-means sample and initialisation.

    Returns
    -------
    ndarray of shape (n_samples,), int64, or None
        ``perm`` with new row ``i`` = old row ``perm[i]`` (rows sorted by cell, stable), from
        ``n_samples // LOCALITY_CELL_ROWS`` cells of plain k-means
        (:func:`dataprune.cell_join.train_cells`, ``spherical=False``); ``None`` below
        :data:`LOCALITY_MIN_ROWS` rows (nothing to gain).
    """
    import faiss

    from dataprune.cell_join import train_cells

    n, d = Z.shape
    if n < LOCALITY_MIN_ROWS:
        return None
    centroids = train_cells(
        Z, max(2, n // LOCALITY_CELL_ROWS), random_state=random_state, spherical=False
    )
    index = faiss.IndexFlatL2(d)
    index.add(centroids)
    _d, cell = index.search(np.ascontiguousarray(Z), 1)
    return np.argsort(cell[:, 0], kind="stable").astype(np.int64)


def recall_sample_rows(n_samples: int, random_state: int = 0) -> np.ndarray:
    """The seeded rows whose exact neighbours measure a graph's recall, sorted.

    ``min(n_samples, 2000)`` distinct rows from a stream of its own (``[random_state, 1]``):
    a graph built from a sample drawn with ``random_state`` itself (the cells' k-means training
    rows) fits those rows better, and measuring recall on them overstated it (0.845 against 0.805
    for all rows on 50,000 uniform rows).
    """
    rng = np.random.default_rng([int(random_state), 1])
    return np.sort(rng.choice(n_samples, size=int(min(n_samples, HNSW_TUNE_SAMPLE)), replace=False))


def sample_recall(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Recall@k of sampled rows: the mean over rows of ``|found ∩ truth| / k`` and its standard
    error over the rows.

    Parameters
    ----------
    found, truth : ndarray of shape (n_rows, k), int
        Approximate and exact neighbour indices of the same rows (``-1`` in ``found``: missing).

    Returns
    -------
    (recall, standard_error) : tuple of float
    """
    hits = (found[:, :, None] == truth[:, None, :]).any(axis=2) & (found >= 0)
    per_row = hits.sum(axis=1) / truth.shape[1]
    se = float(per_row.std(ddof=1) / np.sqrt(len(per_row))) if len(per_row) > 1 else 0.0
    return float(per_row.mean()), se


def hnsw_knn(
    X: np.ndarray,
    k: int,
    *,
    ef_search: int | None = None,
    target_recall: float = 0.95,
    random_state: int = 0,
    block_size: int = 16384,
    show_progress_bar: bool | None = None,
    tune_truth: tuple[np.ndarray, np.ndarray] | None = None,
    project: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """kNN graph of ``X`` (float32, C-contiguous, ``1 <= k < n``) from a faiss HNSW index.

    The index is built with all threads where faiss's build is deterministic
    (:func:`deterministic_parallel_build`), else with one thread (faiss's threaded insertion
    order was unspecified), so the same rows give the same graph; it is searched by all threads
    (search is deterministic). See :func:`default_hnsw_params` for ``efSearch``. ``tune_truth``: the
    tuning sample already searched exactly, ``(rows, neighbours)`` of shapes ``(n_rows,)`` and
    ``(n_rows, k)`` (as :func:`~dataprune.neighbors.exact_knn_rows` returns them); default: a
    seeded sample of ``min(n, 2000)`` rows searched here.

    ``project``: build the graph over the leading principal components and re-score each row's
    ``efSearch`` candidates exactly in the full space
    (:mod:`dataprune.neighbors_projection`). Default (``None``): when ``efSearch`` is tuned and
    few components hold most of the variance (:func:`~dataprune.neighbors_projection.
    principal_projection`); when the projected graph misses the target at the largest
    ``efSearch``, the full-dimensional graph is built and tuned instead. ``False``: never.

    Returns
    -------
    sims, idx : ndarray of shape (n_samples, k)
        As :func:`~dataprune.neighbors.knn_graph`.
    info : dict
        The parameters used (``efSearch`` as tuned, ``build_threads``) and, when tuned, ``sample_recall`` (the
        recall@k of the sample at the chosen ``efSearch``); ``projection``: the projected
        dimension and the variance it holds (``dim`` ``None`` when the full space was searched),
        and ``projection_fallback`` when a projected graph missed the target; ``search_order``
        (projected graphs): ``"cells"`` when renumbered by :func:`locality_order`, else
        ``"rows"``; ``storage`` (projected graphs): ``"sq8"``, the rows' 8-bit codes (see the
        module).
    """
    from dataprune.neighbors import exact_knn_rows
    from dataprune.neighbors_projection import principal_projection

    n, d = X.shape
    params = default_hnsw_params(n, k, ef_search=ef_search, target_recall=target_recall)
    tuned = params["efSearch"] == "auto"
    if tuned and tune_truth is None:
        rows = recall_sample_rows(n, random_state)
        tune_truth = (rows, exact_knn_rows(X, rows, k)[1])
    fallback = None
    if tuned and project is not False:
        components, pinfo = principal_projection(X, random_state=random_state)
        if components is not None:
            out = _hnsw_graph(
                X, k, params, block_size, show_progress_bar, tune_truth, components, random_state
            )
            if out[2]["reached"]:
                out[2].pop("reached")
                out[2]["projection"] = pinfo
                return out
            fallback = {**pinfo, "sample_recall": out[2]["sample_recall"]}
            logger.info(
                "HNSW: the graph over %d principal components reached recall@%d %.3f at the "
                "largest efSearch; building it over all %d dimensions",
                pinfo["dim"], k, out[2]["sample_recall"], d,
            )  # fmt: skip
    sims, idx, info = _hnsw_graph(X, k, params, block_size, show_progress_bar, tune_truth, None)
    if tuned and not info["reached"]:
        logger.warning(
            "HNSW: recall@%d of the %d-row sample is %.3f at the largest efSearch tried (%d), "
            "below the target %.2f; pass a larger ef_search or use method='exact'",
            k, len(tune_truth[0]), info["sample_recall"], info["efSearch"], target_recall,
        )  # fmt: skip
    info.pop("reached")
    info["projection"] = {"dim": None}
    if fallback is not None:
        info["projection_fallback"] = fallback
    return sims, idx, info


def _hnsw_graph(
    X: np.ndarray,
    k: int,
    params: dict[str, object],
    block_size: int,
    show_progress_bar: bool | None,
    tune_truth: tuple[np.ndarray, np.ndarray] | None,
    components: np.ndarray | None,
    random_state: int = 0,
) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, object]]:
    """Build (deterministically), tune ``efSearch`` on ``tune_truth`` when ``params`` say ``"auto"``,
    and search every row. ``components``: search the projected rows (L2, stored as 8-bit codes)
    for ``efSearch`` candidates, re-scored exactly in the full space, the graph renumbered by
    :func:`locality_order` and the rows searched in that order; ``None``: the full space, inner
    product.
    ``info["reached"]``: whether the tuning reached the target (``True`` when not tuned); a
    projected graph that missed it returns ``(None, None, info)`` without searching every row."""
    import faiss

    from dataprune.neighbors import _search_without_self
    from dataprune.neighbors_projection import exact_rescore, project_rows
    from dataprune.progress import progress

    perm = None
    if components is None:
        Z = X
        index = faiss.IndexHNSWFlat(X.shape[1], int(params["M"]), faiss.METRIC_INNER_PRODUCT)
    else:
        Z = project_rows(X, components)
        # stored as 8-bit codes: the candidates are re-scored exactly anyway (see the module)
        index = faiss.IndexHNSWSQ(
            Z.shape[1], faiss.ScalarQuantizer.QT_8bit, int(params["M"]), faiss.METRIC_L2
        )
        index.train(Z)  # each dimension's range over all rows (deterministic)
        if hasattr(index, "permute_entries"):  # faiss >= 1.7.4
            perm = locality_order(Z, random_state=random_state)
    index.hnsw.efConstruction = int(params["efConstruction"])
    threads = faiss.omp_get_max_threads()
    build_threads = threads if deterministic_parallel_build() else 1
    faiss.omp_set_num_threads(build_threads)  # either way: the same rows give the same graph
    try:
        index.add(Z)
    finally:
        faiss.omp_set_num_threads(threads)

    inv = None
    if perm is not None:  # the same graph, renumbered so that a cell's rows sit together
        index.permute_entries(perm)
        Z = Z[perm]
        inv = np.empty_like(perm)
        inv[perm] = np.arange(len(perm))

    def search(rows: np.ndarray | None, progress_bar: bool | None):
        if components is None:
            return _search_without_self(index, X, k, block_size, progress_bar, rows=rows)
        ef = int(index.hnsw.efSearch)  # every candidate of the search list, re-scored
        rows = np.arange(X.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        new = rows if inv is None else inv[rows]
        order = np.argsort(new, kind="stable")  # neighbouring rows searched one after another
        sims = np.empty((len(rows), k), np.float32)
        idx = np.empty((len(rows), k), np.int64)
        blocks = range(0, len(rows), block_size)
        for lo in progress(blocks, show_progress_bar=progress_bar, desc="kNN", unit="block"):
            sel = order[lo : lo + block_size]
            _s, cand = _search_without_self(index, Z, ef, block_size, False, rows=new[sel])
            if perm is not None:
                cand = np.where(cand >= 0, perm[np.maximum(cand, 0)], -1)
            sims[sel], idx[sel] = exact_rescore(X, rows[sel], cand, k)
        return sims, idx

    info: dict[str, object] = {
        "method": "hnsw", **params, "build_threads": build_threads, "reached": True,
    }  # fmt: skip
    if components is not None:
        info["search_order"] = "rows" if perm is None else "cells"
        info["storage"] = "sq8"
    if params["efSearch"] == "auto":
        rows, truth = tune_truth

        def passes(ef: int) -> tuple[bool, float]:
            index.hnsw.efSearch = int(ef)
            _s, found = search(rows, False)
            recall, se = sample_recall(found, truth)
            return recall - 2.0 * se >= params["target_recall"], recall  # ~97.5% sure

        steps = [ef for ef in params["ef_candidates"] if components is None or ef >= k + 2]
        reached, recall, ef, failed = False, 0.0, k + 1, None  # projected: more than k re-scored
        for ef in steps:
            reached, recall = passes(ef)
            if reached:
                break
            failed = ef
        if reached and failed is not None:  # bisect between the last failing step and this one
            while ef - failed > max(2, (k + 1) // HNSW_EF_RESOLUTION):
                mid = (failed + ef) // 2
                ok, mid_recall = passes(mid)
                if ok:
                    ef, recall = mid, mid_recall
                else:
                    failed = mid
        info.update(efSearch=int(ef), sample_recall=round(recall, 4),
                    reached=reached)  # fmt: skip
        logger.info(
            "HNSW%s: efSearch %d (recall@%d of %d sampled rows: %.3f)",
            "" if components is None else f" over {components.shape[1]} components",
            info["efSearch"], k, len(rows), recall,
        )  # fmt: skip
    if components is not None and not info["reached"]:
        return None, None, info  # the caller builds the full graph: no search of every row here
    index.hnsw.efSearch = int(info["efSearch"])
    sims, idx = search(None, show_progress_bar)
    return sims, idx, info
