"""Saving and loading flow policies: one JSON file (format ``dataprune.flow_policy``), no pickle.

Every field is checked on load; a problem is one :class:`~dataprune.errors.DataValidationError`
naming the file.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from dataprune.agents.costs import TokenCostModel
from dataprune.agents.flow.config import FlowConfig
from dataprune.agents.spec import as_agent_specs
from dataprune.errors import DataPruneError, DataValidationError

if TYPE_CHECKING:
    from dataprune.agents.flow.policy import FlowPolicy

__all__ = ["FORMAT", "VERSION", "policy_from_dict", "policy_to_dict", "read_policy_file"]

#: ``format`` of a saved policy.
FORMAT = "dataprune.flow_policy"
#: ``version`` of the saved layout this code reads and writes.
VERSION = 1


def policy_to_dict(policy: FlowPolicy) -> dict[str, Any]:
    """Everything :func:`policy_from_dict` needs, JSON-able.

    Parameters
    ----------
    policy : FlowPolicy
        Fitted.

    Returns
    -------
    dict
    """
    policy.check_is_fitted()
    t = policy.table_
    cm = policy.cost_model
    return {
        "format": FORMAT,
        "version": VERSION,
        "agents": [a.to_dict() for a in policy.agents_],
        "config": policy.config_.to_dict(),
        "random_state": policy.random_state_,
        "cost_model": None if cm is None else cm.to_dict(),
        "token_scale": policy.token_scale_,
        "epsilon": policy.epsilon_,
        "n_episodes": policy.n_episodes_,
        "table": {
            "states": t.states,
            "actions": t.actions,
            "q": t.q.tolist(),
            "visits": t.visits.tolist(),
            "pruned": t.pruned.tolist(),
        },
        "history": policy.history_,
        "trained_on": policy.trained_on_,
    }


def policy_from_dict(cls: type[FlowPolicy], d: Any, *, source: str | None = None) -> FlowPolicy:
    """Rebuild a policy saved by :func:`policy_to_dict` (every field checked).

    Parameters
    ----------
    cls : type
        :class:`~dataprune.agents.flow.FlowPolicy` or a subclass.
    d : object
        The parsed JSON.
    source : str, optional
        Named in errors.

    Returns
    -------
    FlowPolicy
    """

    def bad(msg: str) -> DataValidationError:
        return DataValidationError(msg, source=source)

    if not isinstance(d, dict):
        raise bad(f"expected a JSON object, got {type(d).__name__}")
    if d.get("format") != FORMAT:
        raise bad(f"not a flow policy (format {d.get('format')!r}, expected {FORMAT!r})")
    if d.get("version") != VERSION:
        raise bad(f"unsupported flow policy version {d.get('version')!r} (reads {VERSION})")
    missing = [k for k in ("agents", "config", "random_state", "table") if k not in d]
    if missing:
        raise bad(f"missing field(s) {', '.join(missing)}")
    try:
        if not isinstance(d["agents"], list):
            raise DataValidationError("'agents' must be a list")
        agents = as_agent_specs(d["agents"])
        config = FlowConfig.from_dict(d["config"])
        cm = d.get("cost_model")
        obj = cls(
            agents,
            config=config,
            cost_model=None if cm is None else TokenCostModel(**cm),
            random_state=int(d["random_state"]),
        )
        obj._initialise(agents)
        t, tab = obj.table_, d["table"]
        if tab.get("states") != t.states or tab.get("actions") != t.actions:
            raise DataValidationError("table states/actions do not match the agents")
        q = np.asarray(tab["q"], dtype=np.float64)
        visits = np.asarray(tab["visits"], dtype=np.int64)
        pruned = np.asarray(tab["pruned"], dtype=bool)
        for nm, arr, ref in (
            ("q", q, t.q),
            ("visits", visits, t.visits),
            ("pruned", pruned, t.pruned),
        ):
            if arr.shape != ref.shape:
                raise DataValidationError(f"table {nm} has shape {arr.shape}, expected {ref.shape}")
        if not np.isfinite(q).all() or (visits < 0).any():
            raise DataValidationError("table q must be finite and visits >= 0")
        if (pruned & ~t.valid).any():
            raise DataValidationError("table prunes a transition that does not exist")
        t.q[:], t.visits[:], t.pruned[:] = q, visits, pruned
        obj.token_scale_ = float(d.get("token_scale", obj.token_scale_))
        obj.epsilon_ = float(d.get("epsilon", obj.epsilon_))
        obj.n_episodes_ = int(d.get("n_episodes", 0))
        obj.history_ = list(d.get("history") or [])
        obj.trained_on_ = dict(d.get("trained_on") or {})
    except DataPruneError as exc:
        raise bad(getattr(exc, "reason", None) or str(exc)) from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise bad(f"malformed policy ({type(exc).__name__}: {exc})") from None
    return obj


def read_policy_file(path: str | os.PathLike[str]) -> Any:
    """The parsed JSON of a policy file (errors name the file).

    Parameters
    ----------
    path : str or path

    Returns
    -------
    object
    """
    from dataprune.io.readers import read_json_file

    return read_json_file(path, "policy file")
