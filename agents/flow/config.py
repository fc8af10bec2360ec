"""Configuration of a PriorDynaFlow policy (learning, exploration, pruning, run limits)."""

from __future__ import annotations

from dataclasses import dataclass

from dataprune.agents.flow.context import CONTEXTS
from dataprune.config import ConfigMixin
from dataprune.errors import DataValidationError
from dataprune.registry import Registry

__all__ = ["SUFFIX_MODES", "FlowConfig"]

#: How an agent's NEXT/PROGRESS line is obtained (``FlowConfig.suffix``).
SUFFIX_MODES: Registry[str] = Registry("flow suffix mode")
SUFFIX_MODES.register(
    "auto", "'choose' on backends that support a constrained follow-up, else 'instruct'"
)
SUFFIX_MODES.register("instruct", "the prompt asks the agent to write the line itself")
SUFFIX_MODES.register(
    "choose", "a constrained follow-up after the reply picks the line by likelihood"
)


@dataclass
class FlowConfig(ConfigMixin):
    """Hyper-parameters of :class:`~dataprune.agents.flow.FlowPolicy`.

    Reward and learning
    -------------------
    cost_weight : float, default=0.1
        Price of one ``token_scale`` of tokens in units of correctness: an episode's return is
        ``score - cost_weight * tokens / token_scale``.
    token_scale : float, optional
        Tokens that cost ``cost_weight`` (default: the pool's mean expected tokens of one call,
        prompt plus output, from the agents' token fields).
    learning_rate : float, default=0.1
        Step size of the Q-learning update.
    discount : float, default=1.0
        Discount of later rewards (1 keeps the return equal to the documented reward).
    proposal_bonus : float, default=0.1
        Added to the Q-value of the action the acting agent proposes before the greedy choice;
        with an all-zero table (cold start) the proposal decides.
    stop_progress : float, default=0.8
        An agent that names no successor but reports at least this progress proposes STOP.

    Exploration
    -----------
    epsilon : float, default=0.3
        Initial probability of a uniformly random allowed action while training.
    epsilon_decay : float, default=0.995
        Factor applied to epsilon after every learned episode.
    epsilon_min : float, default=0.02
        Floor of epsilon.

    Training
    --------
    n_epochs : int, default=10
        Passes over the training queries (0 = the cold-start policy).
    patience : int, default=3
        Epochs without an improvement of the mean episode return larger than ``tol`` before
        training stops early (0 disables early stopping).
    tol : float, default=0.001
        Minimal improvement of the mean episode return that resets the patience counter.

    Pruning
    -------
    prune_threshold : float, default=0.0
        A transition whose Q-value is below this after ``prune_min_visits`` updates is pruned
        (never chosen again); STOP and the last remaining action of a state are never pruned.
    prune_min_visits : int, default=20
        Updates a transition needs before it can be pruned (0 disables pruning).

    Runs
    ----
    max_steps : int, default=6
        Agent calls per query at most.
    token_budget : float, optional
        Tokens per query at most, a hard limit: an agent is only called when its expected cost
        still fits, and its output is capped at what remains after its prompt (counted exactly
        before the call where the backend tokenises locally, else the agent's expected prompt
        tokens plus what it reads).
    context : {"all", "last"}, default="all"
        What the next agent reads: every earlier output, or the previous one only.
    start_agent : str, optional
        Agent proposed at START (default: the first agent of the pool).
    suffix : {"auto", "instruct", "choose"}, default="auto"
        How an agent's ``NEXT: ...; PROGRESS: ...`` line is obtained: ``"instruct"`` asks for it
        in the prompt; ``"choose"`` asks a constrained follow-up after the reply, answered by
        likelihood (for small local models that do not follow the format; needs a backend with
        ``supports_choice``); ``"auto"`` is ``"choose"`` where the backend supports it.
    """

    cost_weight: float = 0.1
    token_scale: float | None = None
    learning_rate: float = 0.1
    discount: float = 1.0
    proposal_bonus: float = 0.1
    stop_progress: float = 0.8
    epsilon: float = 0.3
    epsilon_decay: float = 0.995
    epsilon_min: float = 0.02
    n_epochs: int = 10
    patience: int = 3
    tol: float = 0.001
    prune_threshold: float = 0.0
    prune_min_visits: int = 20
    max_steps: int = 6
    token_budget: float | None = None
    context: str = "all"
    start_agent: str | None = None
    suffix: str = "auto"

    def __post_init__(self) -> None:
        CONTEXTS.get(self.context)  # unknown names fail with the valid ones
        SUFFIX_MODES.get(self.suffix)
        for nm in ("n_epochs", "patience", "prune_min_visits"):
            v = getattr(self, nm)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise DataValidationError(f"FlowConfig.{nm} must be an int >= 0, got {v!r}")
        if not isinstance(self.max_steps, int) or isinstance(self.max_steps, bool):
            raise DataValidationError(
                f"FlowConfig.max_steps must be an int, got {self.max_steps!r}"
            )
        if self.max_steps < 1:
            raise DataValidationError(f"FlowConfig.max_steps must be >= 1, got {self.max_steps}")
        for nm in ("epsilon", "epsilon_min", "stop_progress"):
            v = getattr(self, nm)
            if not 0.0 <= v <= 1.0:
                raise DataValidationError(f"FlowConfig.{nm} must be in [0, 1], got {v}")
        if not 0.0 < self.epsilon_decay <= 1.0:
            raise DataValidationError(
                f"FlowConfig.epsilon_decay must be in (0, 1], got {self.epsilon_decay}"
            )
        if not 0.0 < self.learning_rate <= 1.0:
            raise DataValidationError(
                f"FlowConfig.learning_rate must be in (0, 1], got {self.learning_rate}"
            )
        if not 0.0 <= self.discount <= 1.0:
            raise DataValidationError(f"FlowConfig.discount must be in [0, 1], got {self.discount}")
        for nm in ("cost_weight", "proposal_bonus", "tol"):
            if getattr(self, nm) < 0:
                raise DataValidationError(f"FlowConfig.{nm} must be >= 0, got {getattr(self, nm)}")
        if self.token_scale is not None and self.token_scale <= 0:
            raise DataValidationError(f"FlowConfig.token_scale must be > 0, got {self.token_scale}")
        if self.token_budget is not None and self.token_budget <= 0:
            raise DataValidationError(
                f"FlowConfig.token_budget must be > 0, got {self.token_budget}"
            )
