"""AGP: adaptive graph pruning (query-conditioned GCN with node and edge heads).

``AGPConfig`` holds the hyper-parameters; ``AGPPruner`` trains on Stage I records (Stage II),
predicts topologies and saves/loads as ``config.json`` + ``model.safetensors``. Importing this
package imports nothing heavy (names load on first use); torch only when the network is
built inside :meth:`AGPPruner.fit`.
"""

from __future__ import annotations

from dataprune.lazy import lazy_exports

__all__ = ["AGPConfig", "AGPPruner"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {"AGPConfig": "dataprune.agents.agp.config", "AGPPruner": "dataprune.agents.agp.pruner"},
    __all__,
)
