"""The AGP network: query-conditioned GCN over the complete agent graph with edge and node heads.

Inputs are the query embedding ``q`` (dim ``d``) and the agents' profile embeddings ``x_i``.
Node features ``h0_i = relu(W [x_i, q, x_i * q] + e_i)`` (``e_i`` a learned embedding of pool
position ``i``). ``n_layers`` GCN layers propagate over the complete graph of the pool, whose edge
weights ``sigmoid(w_ij)`` are learned (initialised to the complete graph) and symmetrically
normalised with self loops; each layer also has a separate self transform (without it, a GCN on a
complete graph gives every node the same vector). Heads:

* node (hard pruning): ``MLP(h_i) + b_i`` -> keep-logit per agent;
* edge (soft pruning): ``<W_s h_i, W_d h_j> / sqrt(H) + b_ij`` -> keep-logit per edge.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dataprune.agents.agp.config import AGPConfig

__all__ = ["AGPNetwork"]


class _GCNLayer(nn.Module):
    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.self_lin = nn.Linear(dim, dim)
        self.nb_lin = nn.Linear(dim, dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, a_hat: torch.Tensor) -> torch.Tensor:
        agg = torch.einsum("ij,bjh->bih", a_hat, h)
        out = torch.relu(self.self_lin(h) + self.nb_lin(agg))
        return self.norm(h + self.drop(out))


class AGPNetwork(nn.Module):
    """Edge and node keep-logits for a batch of queries.

    Parameters
    ----------
    n_agents : int
    embed_dim : int
        Sentence-embedding dimension.
    config : AGPConfig
    """

    def __init__(self, n_agents: int, embed_dim: int, config: AGPConfig) -> None:
        super().__init__()
        H = config.hidden_dim
        self.n_agents = n_agents
        self.embed_dim = embed_dim
        self.register_buffer("profiles", torch.zeros(n_agents, embed_dim))
        self.inp = nn.Linear(3 * embed_dim, H)
        self.agent_emb = (
            nn.Parameter(torch.zeros(n_agents, H)) if config.learn_agent_embeddings else None
        )
        self.graph_logits = nn.Parameter(torch.full((n_agents, n_agents), 2.0))
        self.layers = nn.ModuleList(_GCNLayer(H, config.dropout) for _ in range(config.n_layers))
        self.node_head = nn.Sequential(nn.Linear(H, H), nn.ReLU(), nn.Linear(H, 1))
        # Per-agent bias, present when the network starts from the label prior.
        self.node_bias = nn.Parameter(torch.zeros(n_agents)) if config.init_from_prior else None
        self.edge_src = nn.Linear(H, H)
        self.edge_dst = nn.Linear(H, H)
        self.pair_bias = nn.Parameter(torch.zeros(n_agents, n_agents)) if config.pair_bias else None
        self.drop = nn.Dropout(config.dropout)
        self._scale = 1.0 / math.sqrt(H)

    def set_profiles(self, profiles: torch.Tensor) -> None:
        """Store the agents' profile embeddings, shape (n_agents, embed_dim)."""
        if tuple(profiles.shape) != (self.n_agents, self.embed_dim):
            raise ValueError(
                f"profiles must have shape ({self.n_agents}, {self.embed_dim}), got {tuple(profiles.shape)}"
            )
        self.profiles.copy_(profiles)

    @torch.no_grad()
    def init_prior(self, keep_rate: torch.Tensor, edge_rate: torch.Tensor) -> None:
        """Start from the label prior: node bias = logit(per-agent keep rate), pair bias =
        logit(per-edge mean label), so an untrained network predicts the per-position
        majority and training only learns query-dependent deviations from it."""
        eps = 0.02
        if self.node_bias is None:
            raise ValueError("init_prior needs a network built with init_from_prior=True")
        self.node_bias.copy_(torch.logit(keep_rate.clamp(eps, 1 - eps)))
        if self.pair_bias is not None:
            self.pair_bias.copy_(torch.logit(edge_rate.clamp(eps, 1 - eps)))
        last = self.node_head[-1]
        last.weight.mul_(0.1)
        last.bias.zero_()

    def normalized_graph(self) -> torch.Tensor:
        n = self.n_agents
        w = torch.sigmoid(self.graph_logits) * (1 - torch.eye(n))
        w = w + torch.eye(n)
        d = w.sum(dim=1).rsqrt()
        return d[:, None] * w * d[None, :]

    def forward(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q`` (batch, embed_dim) -> node logits (batch, n_agents), edge logits
        (batch, n_agents, n_agents) with the diagonal at -inf-like -30."""
        B = q.shape[0]
        x = self.profiles.unsqueeze(0).expand(B, -1, -1)
        qe = q.unsqueeze(1).expand(-1, self.n_agents, -1)
        h = self.inp(torch.cat([x, qe, x * qe], dim=-1))
        if self.agent_emb is not None:
            h = h + self.agent_emb
        h = self.drop(torch.relu(h))
        a_hat = self.normalized_graph()
        for layer in self.layers:
            h = layer(h, a_hat)
        node = self.node_head(h).squeeze(-1)
        if self.node_bias is not None:
            node = node + self.node_bias
        edge = torch.einsum("bih,bjh->bij", self.edge_src(h), self.edge_dst(h)) * self._scale
        if self.pair_bias is not None:
            edge = edge + self.pair_bias
        eye = torch.eye(self.n_agents, dtype=torch.bool)
        edge = edge.masked_fill(eye, -30.0)
        return node, edge
