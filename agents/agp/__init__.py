"""AGP: adaptive graph pruning (query-conditioned GCN with node and edge heads).

``AGPConfig`` holds the hyper-parameters; ``AGPPruner`` trains on Stage I records (Stage II),
predicts topologies and saves/loads as ``config.json`` + ``model.safetensors``. Importing this
package does not import torch; the network is built inside :meth:`AGPPruner.fit`.
"""

from __future__ import annotations

from dataprune.agents.agp.config import AGPConfig
from dataprune.agents.agp.pruner import AGPPruner

__all__ = ["AGPConfig", "AGPPruner"]
