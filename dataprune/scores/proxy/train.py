"""Training the proxy head (torch, CPU) and reading probabilities and penultimate features."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataprune.scores.proxy.config import ProxyConfig

logger = logging.getLogger(__name__)

__all__ = ["FittedProxy", "fit_proxy"]


@dataclass
class FittedProxy:
    """A trained head with the feature scaling it was trained with."""

    net: Any
    mean: np.ndarray
    scale: np.ndarray
    config: ProxyConfig

    def predict(self, X: np.ndarray, *, batch_size: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (n, n_classes) and penultimate features (n, n_features)."""
        import torch

        probs, feats = [], []
        with torch.no_grad():
            for lo in range(0, len(X), batch_size):
                xb = torch.from_numpy(
                    (np.asarray(X[lo : lo + batch_size], np.float32) - self.mean) / self.scale
                )
                h = self.net.features(xb)
                probs.append(torch.softmax(self.net.head(h), dim=1).double().numpy())
                feats.append(h.double().numpy())
        return np.concatenate(probs), np.concatenate(feats)


def _make_net(dim: int, n_classes: int, config: ProxyConfig):
    import torch
    from torch import nn

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            if config.model == "mlp":
                self.body = nn.Sequential(nn.Linear(dim, config.hidden_size), nn.ReLU())
                width = config.hidden_size
            else:
                self.body = nn.Identity()
                width = dim
            self.head = nn.Linear(width, n_classes)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x))

    return Head()


def fit_proxy(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    config: ProxyConfig,
    *,
    seed: int,
) -> FittedProxy:
    """Train one head on ``(X, y)`` (y: int class indices) with Adam for ``config.epochs`` epochs."""
    import torch

    X = np.asarray(X, dtype=np.float32)
    if config.standardize:
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale < 1e-8] = 1.0
    else:
        mean = np.zeros(X.shape[1], np.float32)
        scale = np.ones(X.shape[1], np.float32)
    Xt = torch.from_numpy((X - mean) / scale)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    # Mini-batch steps on a small head are dominated by per-op overhead; extra intra-op threads
    # only add synchronisation (and thrash on shared CPUs), so train single-threaded.
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(Xt, yt, X.shape[1], n_classes, config, seed, mean, scale)
    finally:
        torch.set_num_threads(n_threads)


def _train(Xt, yt, dim, n_classes, config, seed, mean, scale) -> FittedProxy:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _make_net(dim, n_classes, config)
        opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        gen = torch.Generator().manual_seed(seed)
        n = len(Xt)
        per_epoch = -(-n // config.batch_size)
        epochs = max(config.epochs, -(-config.min_steps // per_epoch))
        net.train()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            for lo in range(0, n, config.batch_size):
                b = perm[lo : lo + config.batch_size]
                loss = torch.nn.functional.cross_entropy(net(Xt[b]), yt[b])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        net.eval()
    return FittedProxy(net, mean.astype(np.float32), scale.astype(np.float32), config)
