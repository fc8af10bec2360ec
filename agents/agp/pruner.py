"""AGP: adaptive graph pruning (query-conditioned hard + soft pruning of a multi-agent graph)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.agents.agp.config import AGPConfig
from dataprune.agents.costs import TokenCostModel
from dataprune.agents.pruner import (
    TopologyPruner,
    query_seed,
    records_and_agents,
    select_topology,
)
from dataprune.agents.records import AGPRecords
from dataprune.agents.spec import AgentSpec, as_agent_specs
from dataprune.agents.topology import Topology
from dataprune.errors import DataValidationError, ModelNotAvailableError
from dataprune.seeding import resolve_seed

logger = logging.getLogger(__name__)

__all__ = ["AGPPruner"]

_FORMAT = "dataprune.agp"
_VERSION = 1
_CONFIG = "config.json"
_WEIGHTS = "model.safetensors"


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op threads (restored afterwards)."""
    if n is None:
        yield
        return
    import torch

    old = torch.get_num_threads()
    if old == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class AGPPruner(TopologyPruner):
    """Adaptive Graph Pruning (AGP, arXiv 2506.02951) for a fixed agent pool.

    A GCN over the complete agent graph, conditioned on the query embedding, predicts per query a
    keep-probability per agent (hard pruning: how many and which agents run) and per edge (soft
    pruning: which messages are sent). Trained (Stage II) on Stage I records in AGP's format.

    Parameters
    ----------
    agents : sequence of AgentSpec or str, optional
        The pool, in record order. Default at ``fit``: ``base``'s agents, else ``agent_0 ...``.
    config : AGPConfig, optional
        Network and training hyper-parameters.
    encoder : str, path or encoder object, optional
        Sentence encoder for queries and agent profiles (default ``config.encoder`` or
        all-MiniLM-L6-v2, offline). Objects need ``encode(list[str])``.
    base : Topology, optional
        Graph being pruned: only its edges can be kept (default: every ordered pair).
    node_threshold, edge_threshold : float, default=0.5
        Deterministic inference keeps agents / edges with probability >= threshold.
    max_agents : int, optional
        Keep at most this many agents (the most probable ones, required ones first).
    required : iterable of str, optional
        Agents always kept (in addition to ``AgentSpec.required``).
    token_budget : float, optional
        Drop the least probable agents / edges until the estimated tokens fit.
    cost_model : TokenCostModel, optional
        Token estimates for ``token_budget`` (default: from the agents' token fields).
    aggregator : str, default="majority"
        Aggregator of the predicted topologies.
    cache_embeddings : bool, default=True
        Cache training-query embeddings on disk (:func:`dataprune.embeddings.embed_texts`).
    n_threads : int or None, default=1
        Torch intra-op threads while training and predicting (restored afterwards). The network
        and a single query are tiny: extra threads only add synchronisation cost, which on a busy
        shared CPU can make training 50x slower. ``None`` leaves torch's setting alone.
    random_state : int or None, default=None
        Seed of training and of sampled predictions; ``None`` draws one at ``fit`` (recorded as
        ``random_state_`` and saved with the model). Seeds initialisation, mini-batch order and
        sampled inference.
    show_progress_bar : bool, optional

    Attributes
    ----------
    agents_ : tuple of AgentSpec
    network_ : AGPNetwork
    history_ : list of dict
        Per-epoch mean losses.
    random_state_ : int
        The seed used (``random_state``, or the one drawn when it is ``None``).
    n_records_ : int
    """

    name = "agp"

    def __init__(
        self,
        agents: Sequence[AgentSpec | str] | None = None,
        *,
        config: AGPConfig | None = None,
        encoder: Any = None,
        base: Topology | None = None,
        node_threshold: float = 0.5,
        edge_threshold: float = 0.5,
        max_agents: int | None = None,
        required: Iterable[str] | None = None,
        token_budget: float | None = None,
        cost_model: TokenCostModel | None = None,
        aggregator: str = "majority",
        cache_embeddings: bool = True,
        n_threads: int | None = 1,
        random_state: int | None = None,
        show_progress_bar: bool | None = None,
    ) -> None:
        self.agents = agents
        self.config = config
        self.encoder = encoder
        self.base = base
        self.node_threshold = node_threshold
        self.edge_threshold = edge_threshold
        self.max_agents = max_agents
        self.required = required
        self.token_budget = token_budget
        self.cost_model = cost_model
        self.aggregator = aggregator
        self.cache_embeddings = cache_embeddings
        self.n_threads = n_threads
        self.random_state = random_state
        self.show_progress_bar = show_progress_bar

    # ------------------------------------------------------------------ encoder
    def _encoder_obj(self) -> Any:
        enc = getattr(self, "_loaded_encoder", None)
        if enc is not None:
            return enc
        if self.encoder is not None and not isinstance(self.encoder, (str, os.PathLike)):
            enc = self.encoder
        else:
            from dataprune.models import load_encoder

            cfg = self.config_ if hasattr(self, "config_") else (self.config or AGPConfig())
            enc = load_encoder(self.encoder if self.encoder is not None else cfg.encoder)
        self._loaded_encoder = enc
        return enc

    def _encoder_identity(self) -> tuple[str, bool]:
        from dataprune.embeddings import model_identity
        from dataprune.models import resolve_encoder

        if self.encoder is not None and not isinstance(self.encoder, (str, os.PathLike)):
            return model_identity(self.encoder), True
        cfg = self.config or AGPConfig()
        name = self.encoder if self.encoder is not None else cfg.encoder
        return resolve_encoder(name).name, False

    def _embed(self, texts: list[str], *, cache: bool = False) -> np.ndarray:
        if cache:
            from dataprune.embeddings import embed_texts

            return np.asarray(
                embed_texts(texts, self._encoder_obj(), show_progress_bar=self.show_progress_bar),
                dtype=np.float32,
            )
        enc = self._encoder_obj()
        try:
            X = enc.encode(
                texts,
                batch_size=64,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        except TypeError:
            X = enc.encode(texts)
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] != len(texts):
            raise DataValidationError(
                f"encoder returned shape {X.shape}, expected ({len(texts)}, dim)"
            )
        return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        records: AGPRecords | Sequence[dict[str, Any]] | str | os.PathLike[str] | None = None,
        *,
        queries: Any = None,
        evaluator: Any = None,
    ) -> AGPPruner:
        """Stage II training on AGP records (list of dicts, :class:`AGPRecords` or a file path).

        ``mask`` = 1 means pruned; ``edge_weight`` are (soft) edge labels.
        """
        with _torch_threads(self.n_threads):
            return self._fit(records)

    def _fit(self, records: Any) -> AGPPruner:
        import torch

        from dataprune.agents.agp.model import AGPNetwork
        from dataprune.agents.agp.training import train_network

        if records is None:
            raise DataValidationError(
                "AGPPruner.fit needs Stage I records (mine them with "
                "dataprune.agents.mining.mine_subgraphs or load AGP's released files)"
            )
        recs, agents = records_and_agents(records, self.agents, self.base)
        if self.base is not None and [a.name for a in self.base.agents] != [a.name for a in agents]:
            raise DataValidationError("base topology agents differ from the pruner's agents")
        cfg = self.config if self.config is not None else AGPConfig()
        if not isinstance(cfg, AGPConfig):
            raise DataValidationError(f"config must be an AGPConfig, got {type(cfg).__name__}")
        self.random_state_ = resolve_seed(self.random_state)
        Q = self._embed(list(recs.tasks), cache=self.cache_embeddings)
        P = self._embed([a.description for a in agents])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state_)
            net = AGPNetwork(len(agents), Q.shape[1], cfg)
            net.set_profiles(torch.from_numpy(np.array(P, copy=True)))
            history = train_network(
                net,
                Q,
                recs.keep,
                recs.edge_weight,
                cfg,
                random_state=self.random_state_,
                show_progress_bar=self.show_progress_bar,
            )
        self.agents_ = agents
        self.config_ = cfg
        self.network_ = net
        self.history_ = history
        self.n_records_ = len(recs)
        self.embed_dim_ = int(Q.shape[1])
        self.encoder_identity_ = self._encoder_identity()
        return self

    # ------------------------------------------------------------------ inference
    def predict_proba(self, queries: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Keep-probabilities for each query.

        Returns
        -------
        node_prob : ndarray of shape (n_queries, n_agents)
            Higher = keep the agent.
        edge_prob : ndarray of shape (n_queries, n_agents, n_agents)
            Higher = keep the message ``i -> j`` (diagonal 0).
        """
        self._check_fitted()
        if isinstance(queries, str):
            raise DataValidationError("predict_proba expects a list of queries, not one string")
        queries = list(queries)
        for i, q in enumerate(queries):
            if not isinstance(q, str) or not q.strip():
                raise DataValidationError("expected a non-empty query string", record=i)
        if not queries:
            n = len(self.agents_)
            return np.zeros((0, n)), np.zeros((0, n, n))
        with _torch_threads(self.n_threads):
            return self._predict_proba(queries)

    def _predict_proba(self, queries: list[str]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        X = self._embed(queries)
        if X.shape[1] != self.embed_dim_:
            raise DataValidationError(
                f"the encoder gives {X.shape[1]}-dim embeddings but the model was trained on "
                f"{self.embed_dim_}-dim ones ({self.encoder_identity_[0]})"
            )
        with torch.inference_mode():
            node, edge = self.network_(torch.from_numpy(np.array(X, copy=True)))
            pn = torch.sigmoid(node).numpy().astype(np.float64)
            pe = torch.sigmoid(edge).numpy().astype(np.float64)
        n = pe.shape[1]
        pe[:, np.arange(n), np.arange(n)] = 0.0
        return pn, pe

    def _candidates(self) -> np.ndarray | None:
        return None if self.base is None else self.base.effective_adjacency()

    def _topology(
        self,
        query: str,
        pn: np.ndarray,
        pe: np.ndarray,
        *,
        sample: bool,
        random_state: int | None,
        max_agents: int | None,
        token_budget: float | None,
        required: Iterable[str] | None,
    ) -> Topology:
        rs = self.random_state_ if random_state is None else random_state
        req = list(self.required or []) + list(required or [])
        return select_topology(
            self.agents_,
            pn,
            pe,
            candidates=self._candidates(),
            node_threshold=self.node_threshold,
            edge_threshold=self.edge_threshold,
            max_agents=self.max_agents if max_agents is None else max_agents,
            required=req,
            token_budget=self.token_budget if token_budget is None else token_budget,
            cost_model=self.cost_model,
            sample=sample,
            rng=np.random.default_rng(query_seed(rs, query)) if sample else None,
            aggregator=self.aggregator,
            metadata={"pruner": self.name, "query": query, "sampled": bool(sample)},
        )

    def predict(
        self,
        query: str,
        *,
        sample: bool = False,
        random_state: int | None = None,
        max_agents: int | None = None,
        token_budget: float | None = None,
        required: Iterable[str] | None = None,
    ) -> Topology:
        """The pruned topology for ``query``.

        Parameters
        ----------
        sample : bool, default=False
            Draw agents and edges from their probabilities (seeded by ``random_state`` and the
            query, so reproducible) instead of thresholding.
        max_agents, token_budget, required
            Override the pruner's settings for this call.
        """
        if not isinstance(query, str):
            raise DataValidationError(f"expected a query string, got {type(query).__name__}")
        pn, pe = self.predict_proba([query])
        return self._topology(
            query,
            pn[0],
            pe[0],
            sample=sample,
            random_state=random_state,
            max_agents=max_agents,
            token_budget=token_budget,
            required=required,
        )

    def predict_many(self, queries: Sequence[str], *, sample: bool = False) -> list[Topology]:
        """Batched :meth:`predict` (one encoder call for all queries)."""
        pn, pe = self.predict_proba(queries)
        return [
            self._topology(
                q,
                pn[i],
                pe[i],
                sample=sample,
                random_state=None,
                max_agents=None,
                token_budget=None,
                required=None,
            )
            for i, q in enumerate(queries)
        ]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``path/config.json`` and ``path/model.safetensors`` (no pickle)."""
        from safetensors.torch import save_file

        from dataprune.atomic import atomic_path, atomic_write_json

        self._check_fitted()
        out = Path(path)
        if out.exists() and not out.is_dir():
            raise DataValidationError(
                "expected a directory for the model, found a file", source=str(out)
            )
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.network_.state_dict().items()}
        with atomic_path(out / _WEIGHTS) as tmp:
            save_file(state, str(tmp), metadata={"format": _FORMAT})
        cm = self.cost_model
        meta = {
            "format": _FORMAT,
            "version": _VERSION,
            "config": self.config_.to_dict(),
            "agents": [a.to_dict() for a in self.agents_],
            "n_agents": len(self.agents_),
            "embed_dim": self.embed_dim_,
            "encoder": {"name": self.encoder_identity_[0], "custom": self.encoder_identity_[1]},
            "base": None if self.base is None else self.base.to_dict(),
            "inference": {
                "node_threshold": self.node_threshold,
                "edge_threshold": self.edge_threshold,
                "max_agents": self.max_agents,
                "required": list(self.required or []),
                "token_budget": self.token_budget,
                "aggregator": self.aggregator,
                "random_state": self.random_state_,
                "n_threads": self.n_threads,
            },
            "cost_model": None if cm is None else cm.to_dict(),
            "training": {"n_records": self.n_records_, "final_loss": self.history_[-1]},
        }
        atomic_write_json(out / _CONFIG, meta)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, encoder: Any = None) -> AGPPruner:
        """Load a model saved by :meth:`save`.

        ``encoder`` is required when the model was trained with a custom encoder object.
        """
        from safetensors.torch import load_file

        from dataprune.agents.agp.model import AGPNetwork

        p = Path(path)
        cfg_path, w_path = p / _CONFIG, p / _WEIGHTS
        if not cfg_path.is_file() or not w_path.is_file():
            raise ModelNotAvailableError(
                f"{p} is not an AGP model directory (expected {_CONFIG} and {_WEIGHTS}; train one "
                "with `dataprune agents train`)"
            )
        try:
            meta = json.loads(cfg_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataValidationError(f"malformed JSON ({exc.msg})", source=str(cfg_path)) from None
        if meta.get("format") != _FORMAT:
            raise DataValidationError(
                f"not an AGP model config (format {meta.get('format')!r})", source=str(cfg_path)
            )
        if meta.get("version") != _VERSION:
            raise DataValidationError(
                f"unsupported AGP model version {meta.get('version')!r} (this dataprune reads "
                f"version {_VERSION})",
                source=str(cfg_path),
            )
        enc_info = meta["encoder"]
        if encoder is None and enc_info.get("custom"):
            raise DataValidationError(
                f"this model was trained with a custom encoder ({enc_info['name']}); pass the "
                "same encoder to AGPPruner.load(path, encoder=...)"
            )
        config = AGPConfig.from_dict(meta["config"])
        inf = meta["inference"]
        cm = meta.get("cost_model")
        obj = cls(
            [AgentSpec.from_dict(a) for a in meta["agents"]],
            config=config,
            encoder=encoder,
            base=None if meta.get("base") is None else Topology.from_dict(meta["base"]),
            node_threshold=inf["node_threshold"],
            edge_threshold=inf["edge_threshold"],
            max_agents=inf["max_agents"],
            required=inf["required"] or None,
            token_budget=inf["token_budget"],
            cost_model=None if cm is None else TokenCostModel(**cm),
            aggregator=inf["aggregator"],
            n_threads=inf.get("n_threads", 1),
            random_state=inf["random_state"],
        )
        net = AGPNetwork(meta["n_agents"], meta["embed_dim"], config)
        state = load_file(str(w_path))
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise DataValidationError(
                f"weights do not match the config (missing {missing[:3]}, unexpected "
                f"{unexpected[:3]})",
                source=str(w_path),
            )
        net.eval()
        obj.agents_ = as_agent_specs(obj.agents)
        obj.config_ = config
        obj.random_state_ = resolve_seed(inf["random_state"])
        obj.network_ = net
        obj.history_ = [meta["training"]["final_loss"]]
        obj.n_records_ = meta["training"]["n_records"]
        obj.embed_dim_ = meta["embed_dim"]
        obj.encoder_identity_ = (enc_info["name"], bool(enc_info.get("custom")))
        if encoder is None:
            obj.encoder = None if enc_info["name"] is None else enc_info["name"]
        return obj
