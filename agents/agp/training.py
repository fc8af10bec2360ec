"""Stage II: supervised training of the AGP network on Stage I records."""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from dataprune.agents.agp.config import AGPConfig
from dataprune.agents.agp.model import AGPNetwork
from dataprune.progress import progress

logger = logging.getLogger(__name__)

__all__ = ["stage2_loss", "train_network"]


def stage2_loss(
    node_logits: torch.Tensor,
    edge_logits: torch.Tensor,
    keep: torch.Tensor,
    edge_target: torch.Tensor,
    config: AGPConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """AGP's Stage II objective.

    ``L = w_e * L_edge + w_n * BCE(node, keep) + 0.05 * mean(p_edge) + 0.01 * mean(p_ij (1 - n_i n_j))``
    where ``L_edge`` is BCE (or MSE on probabilities) against the soft edge labels, averaged over
    off-diagonal pairs.

    Parameters
    ----------
    node_logits : (batch, n_agents)
    edge_logits : (batch, n_agents, n_agents)
    keep : (batch, n_agents), 1 = agent runs
    edge_target : (batch, n_agents, n_agents) in [0, 1]
    """
    n = keep.shape[1]
    off = ~torch.eye(n, dtype=torch.bool)
    el, et = edge_logits[:, off], edge_target[:, off]
    if config.edge_loss == "bce":
        l_edge = F.binary_cross_entropy_with_logits(el, et)
    else:
        l_edge = F.mse_loss(torch.sigmoid(el), et)
    l_node = F.binary_cross_entropy_with_logits(node_logits, keep)
    p_edge = torch.sigmoid(edge_logits)[:, off]
    p_node = torch.sigmoid(node_logits)
    both = (p_node[:, :, None] * p_node[:, None, :])[:, off]
    l_sparse = p_edge.mean()
    l_cons = (p_edge * (1 - both)).mean()
    total = (
        config.edge_loss_weight * l_edge
        + config.node_loss_weight * l_node
        + config.sparsity_weight * l_sparse
        + config.consistency_weight * l_cons
    )
    parts = {
        "loss": float(total.detach()),
        "edge": float(l_edge.detach()),
        "node": float(l_node.detach()),
        "sparsity": float(l_sparse.detach()),
        "consistency": float(l_cons.detach()),
    }
    return total, parts


def train_network(
    network: AGPNetwork,
    queries: np.ndarray,
    keep: np.ndarray,
    edge_weight: np.ndarray,
    config: AGPConfig,
    *,
    random_state: int = 0,
    show_progress_bar: bool | None = None,
) -> list[dict[str, float]]:
    """Adam on :func:`stage2_loss` in shuffled mini-batches; returns the per-epoch mean losses.

    With ``config.validation_fraction`` (and >= 40 records) a held-out part of the records picks
    the best epoch (early stopping with ``config.patience``); the best weights are restored.

    Parameters
    ----------
    queries : (n_records, embed_dim) float32
    keep : (n_records, n_agents) float32
    edge_weight : (n_records, n_agents, n_agents) float32
    """
    Q = torch.from_numpy(np.array(queries, dtype=np.float32, copy=True))
    K = torch.from_numpy(np.array(keep, dtype=np.float32, copy=True))
    E = torch.from_numpy(np.array(edge_weight, dtype=np.float32, copy=True))
    n = Q.shape[0]
    gen = torch.Generator().manual_seed(int(random_state))
    n_val = round(config.validation_fraction * n) if n >= 40 else 0
    if n_val:
        order = torch.randperm(n, generator=gen)
        val_idx, tr_idx = order[:n_val], order[n_val:]
    else:
        val_idx, tr_idx = torch.arange(0), torch.arange(n)
    if config.init_from_prior and tr_idx.numel() > 0:
        network.init_prior(K[tr_idx].mean(dim=0), E[tr_idx].mean(dim=0))
    opt = torch.optim.Adam(
        network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )

    def val_loss() -> float:
        network.eval()
        with torch.no_grad():
            node, edge = network(Q[val_idx])
            loss, _ = stage2_loss(node, edge, K[val_idx], E[val_idx], config)
        network.train()
        return float(loss)

    history: list[dict[str, float]] = []
    steps = 0
    best = (val_loss(), 0, copy.deepcopy(network.state_dict())) if n_val else None
    network.train()
    n_tr = len(tr_idx)
    for epoch in progress(
        range(config.epochs), show_progress_bar=show_progress_bar, desc="AGP Stage II", unit="epoch"
    ):
        perm = tr_idx[torch.randperm(n_tr, generator=gen)]
        sums: dict[str, float] = {}
        nb = 0
        for start in range(0, n_tr, config.batch_size):
            idx = perm[start : start + config.batch_size]
            node, edge = network(Q[idx])
            loss, parts = stage2_loss(node, edge, K[idx], E[idx], config)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            nb += 1
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            if config.max_steps is not None and steps >= config.max_steps:
                break
        record = {k: v / nb for k, v in sums.items()} | {"steps": steps}
        if best is not None:
            vl = val_loss()
            record["val_loss"] = vl
            if vl < best[0] - 1e-6:
                best = (vl, epoch + 1, copy.deepcopy(network.state_dict()))
        history.append(record)
        if config.max_steps is not None and steps >= config.max_steps:
            break
        if best is not None and epoch + 1 - best[1] >= config.patience:
            break
    if best is not None:
        network.load_state_dict(best[2])
        history[-1]["best_epoch"] = best[1]
        history[-1]["best_val_loss"] = best[0]
    network.eval()
    logger.info("AGP Stage II: %d steps, final loss %.4f", steps, history[-1]["loss"])
    return history
