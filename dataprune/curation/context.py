"""The run context every stage reads: the records, the budget, and shared lazily-built inputs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.curation.view import RecordView

logger = logging.getLogger(__name__)

__all__ = ["CurationContext"]


@dataclass
class CurationContext:
    """Shared state of one curation run.

    Attributes
    ----------
    view : RecordView
        The valid records (stages address them by view position).
    budget : int or None
        Records the selection stage keeps (exact), ``None`` without a budget.
    encoder, lm : str, path, model object or None
        Sentence encoder (embedding stages) and causal LM (LM scores); ``None`` = the defaults.
    engine : str or Engine
        ``"local"`` or an engine for the embedding / clustering work.
    work_dir : Path or None
        Where embeddings are cached (under the output's cache folder).
    scores : dict of str to ndarray of shape (n,), float64
        Every score computed so far by earlier stages (NaN where not computed).
    """

    view: RecordView
    budget: int | None
    random_state: int | None
    encoder: Any = None
    lm: Any = None
    engine: Any = "local"
    engine_options: dict[str, Any] = field(default_factory=dict)
    work_dir: Path | None = None
    show_progress_bar: bool | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    _embeddings: np.ndarray | None = None
    _lm: tuple[Any, Any] | None = None

    @property
    def n(self) -> int:
        return len(self.view)

    @property
    def local(self) -> bool:
        return isinstance(self.engine, str) and self.engine.lower() == "local"

    def embeddings(self) -> np.ndarray:
        """L2-normalised embeddings of every valid record's text, shape (n, dim), float32."""
        if self._embeddings is None:
            from dataprune.embeddings import embed_texts, model_identity
            from dataprune.models import resolve_encoder

            model = self.encoder
            if model is None or isinstance(model, (str, Path)):
                self.models["encoder"] = resolve_encoder(model).describe()
            else:
                self.models["encoder"] = {"name": model_identity(model)}
            if not self.local:
                from dataprune.distributed.shards import embed_texts_distributed

                E = embed_texts_distributed(
                    self.view.texts,
                    model,
                    engine=self.engine,
                    show_progress_bar=self.show_progress_bar,
                    **self.engine_options,
                )
            else:
                cache_dir = None if self.work_dir is None else self.work_dir / "embeddings"
                E = embed_texts(
                    self.view.texts,
                    model,
                    cache_dir=cache_dir,
                    show_progress_bar=self.show_progress_bar,
                )
            self._embeddings = np.asarray(E, dtype=np.float32)
        return self._embeddings

    def causal_lm(self) -> tuple[Any, Any]:
        """(model, tokenizer) for LM scores, loaded once."""
        if self._lm is None:
            from dataprune.models import load_causal_lm, resolve_causal_lm

            if isinstance(self.lm, tuple):
                self._lm = self.lm
                self.models["lm"] = {"name": getattr(self.lm[0], "name_or_path", "custom")}
            else:
                self.models["lm"] = resolve_causal_lm(self.lm).describe()
                self._lm = load_causal_lm(self.lm)
        return self._lm

    def memo_scores(
        self, what: dict[str, Any], seen: np.ndarray, compute: Any
    ) -> dict[str, np.ndarray]:
        """Score columns for the records ``seen``, computed once per (score options, model,
        texts) and kept under ``work_dir/scores`` (parquet), so changing only a cut re-filters
        without re-scoring."""
        import hashlib
        import json

        if self.work_dir is None:
            return compute()
        from dataprune.embeddings import model_identity

        h = hashlib.sha256()
        lm = self.lm[0] if isinstance(self.lm, tuple) else self.lm
        ident = (
            None if lm is None else (str(lm) if isinstance(lm, (str, Path)) else model_identity(lm))
        )
        h.update(json.dumps({**what, "lm": ident}, sort_keys=True, default=str).encode())
        for p in seen.tolist():
            h.update(self.view.prompts[p].encode("utf-8") + b"\x1f")
            h.update(self.view.responses[p].encode("utf-8") + b"\x1e")
        path = self.work_dir / "scores" / f"{h.hexdigest()[:32]}.parquet"
        import pyarrow as pa
        import pyarrow.parquet as pq

        if path.is_file():
            try:
                table = pq.read_table(path).to_pydict()
                if all(len(v) == len(seen) for v in table.values()):
                    return {k: np.asarray(v, dtype=np.float64) for k, v in table.items()}
            except (OSError, ValueError) as exc:
                logger.warning("ignoring unreadable score cache %s (%s)", path, exc)
        cols = compute()
        from dataprune.atomic import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            pq.write_table(
                pa.table({k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}), tmp
            )
        return cols

    def score(self, name: str) -> np.ndarray:
        """A score column (shape (n,)) computed by an earlier stage."""
        return self.scores[name]
