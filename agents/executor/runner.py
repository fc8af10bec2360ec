"""Run a :class:`~dataprune.agents.topology.Topology` on a query.

Agents run round by round and, within a round, level by level (:meth:`Topology.levels`); the
agents of one level run concurrently in a thread pool. Each agent receives its active
predecessors' outputs (spatial edges of this round, temporal edges from the previous round).
Pruned agents are never called. The decision agent (when the topology has one) reads every active
agent's final output and answers; otherwise the topology's aggregator rule decides. Every call has
a timeout and is retried on transient errors; an agent that still fails is reported in the result
(its successors run without its message).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dataprune.agents.executor.backends import BackendError, ChatBackend, make_backend
from dataprune.agents.executor.messages import (
    AgentCall,
    ChoiceRequest,
    Completion,
    Message,
    build_chat_messages,
    extract_answer,
)
from dataprune.agents.executor.results import (
    AgentRun,
    ExecutionResult,
    TokenLedger,
    aggregate_answers,
)
from dataprune.agents.spec import AgentSpec
from dataprune.agents.topology import Topology
from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["Executor"]


class Executor:
    """Run topologies on queries with real or simulated agents.

    Parameters
    ----------
    backend : ChatBackend or mapping of agent name to ChatBackend, optional
        One backend for every agent, or per agent; agents without one use their ``llm`` config
        (:func:`~dataprune.agents.executor.backends.make_backend`).
    max_workers : int, default=8
        Concurrent calls within a level.
    timeout_s : float, default=60.0
        Per-attempt timeout handed to the backend; the executor also stops waiting for a level
        after ``timeout_s * (max_retries + 1)`` plus back-off and marks late agents as failed.
    max_retries : int, default=2
        Retries of a retryable :class:`BackendError` (timeouts, connection errors, 429, 5xx).
    retry_backoff_s : float, default=0.5
        First back-off; doubles per retry (a server's ``Retry-After`` wins when larger, capped at
        ``timeout_s``).
    answer_parser : callable(str) -> str or None, optional
        Extracts the answer from an output (default: :func:`extract_answer`).
    """

    def __init__(
        self,
        backend: ChatBackend | Mapping[str, ChatBackend] | None = None,
        *,
        max_workers: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        retry_backoff_s: float = 0.5,
        answer_parser: Callable[[str | None], str | None] | None = None,
    ) -> None:
        if max_workers < 1:
            raise DataValidationError(f"max_workers must be >= 1, got {max_workers}")
        if timeout_s <= 0:
            raise DataValidationError(f"timeout_s must be > 0, got {timeout_s}")
        if max_retries < 0:
            raise DataValidationError(f"max_retries must be >= 0, got {max_retries}")
        self.backend = backend
        self.max_workers = max_workers
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.retry_backoff_s = float(retry_backoff_s)
        self.answer_parser = answer_parser or extract_answer
        self._made: dict[Any, ChatBackend] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ backends
    def backend_for(self, agent: AgentSpec) -> ChatBackend:
        """The backend that answers ``agent``: the executor's (one, or per agent name), else one
        made (once) from the agent's ``llm`` config.

        Parameters
        ----------
        agent : AgentSpec

        Returns
        -------
        ChatBackend
        """
        b = self.backend
        if isinstance(b, ChatBackend):
            return b
        if isinstance(b, Mapping) and agent.name in b:
            return b[agent.name]
        if agent.llm is None:
            raise DataValidationError(
                f"agent {agent.name!r} has no backend: give it an llm config or pass "
                "Executor(backend=...)"
            )
        with self._lock:
            if agent.llm not in self._made:
                self._made[agent.llm] = make_backend(agent.llm)
            return self._made[agent.llm]

    # ------------------------------------------------------------------ one call
    def _call(self, backend: ChatBackend, call: AgentCall, run: AgentRun, t0: float) -> AgentRun:
        run.started_s = time.perf_counter() - t0
        start = time.perf_counter()
        delay = self.retry_backoff_s
        for attempt in range(self.max_retries + 1):
            run.attempts = attempt + 1
            try:
                c: Completion = backend.complete(call)
            except BackendError as exc:
                run.error = f"BackendError: {exc}"
                if not exc.retryable or attempt == self.max_retries:
                    break
                wait = max(delay, exc.retry_after or 0.0)
                time.sleep(min(wait, self.timeout_s))
                delay *= 2
                continue
            except Exception as exc:  # a custom backend's bug: report it, do not retry
                run.error = f"{type(exc).__name__}: {exc}"
                break
            run.status = "ok"
            run.error = None
            run.output = c.text
            run.answer = self.answer_parser(c.text)
            run.prompt_tokens = int(c.prompt_tokens)
            run.completion_tokens = int(c.completion_tokens)
            run.usage_source = c.usage_source
            break
        if run.status != "ok":
            run.status = "failed"
        run.latency_s = time.perf_counter() - start
        return run

    def _run_batch(
        self, items: list[tuple[ChatBackend, AgentCall, AgentRun]], t0: float
    ) -> list[AgentRun]:
        if len(items) == 1:
            b, c, r = items[0]
            return [self._call(b, c, r, t0)]
        budget = (
            self.timeout_s * (self.max_retries + 1)
            + self.retry_backoff_s * (2 ** (self.max_retries + 1))
            + 1.0
        )
        pool = cf.ThreadPoolExecutor(max_workers=min(self.max_workers, len(items)))
        try:
            futs = [pool.submit(self._call, b, c, r, t0) for b, c, r in items]
            done, _ = cf.wait(futs, timeout=budget)
            out = []
            for f, (_, _, r) in zip(futs, items):
                if f in done:
                    out.append(f.result())
                else:
                    r.status = "failed"
                    r.error = f"TimeoutError: no answer within {budget:.1f} s (backend ignored its timeout)"
                    out.append(r)
            return out
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ one step (hook)
    def make_call(
        self,
        agent: AgentSpec,
        query: str,
        inbox: Sequence[Message] = (),
        *,
        round: int = 1,
        messages: list[dict[str, str]] | None = None,
        max_new_tokens: int | None = None,
        choice: ChoiceRequest | None = None,
    ) -> AgentCall:
        """The :class:`AgentCall` that :meth:`run_step` sends (e.g. to count its tokens first).

        Parameters are those of :meth:`run_step`.

        Returns
        -------
        AgentCall
        """
        msgs = (
            messages
            if messages is not None
            else build_chat_messages(agent, query, inbox, round=round)
        )
        return AgentCall(
            agent,
            query,
            tuple(inbox),
            round,
            msgs,
            self.timeout_s,
            max_new_tokens=max_new_tokens,
            choice=choice,
        )

    def run_step(
        self,
        agent: AgentSpec,
        query: str,
        inbox: Sequence[Message] = (),
        *,
        round: int = 1,
        level: int = 0,
        messages: list[dict[str, str]] | None = None,
        ledger: TokenLedger | None = None,
        t0: float | None = None,
        max_new_tokens: int | None = None,
        choice: ChoiceRequest | None = None,
    ) -> AgentRun:
        """Call one agent once with this executor's backend, retries and timeout.

        The hook that step-by-step (dynamic) workflows build on: the caller decides who runs
        next, this method does the call exactly as :meth:`run` does for a topology's agents.

        Parameters
        ----------
        agent : AgentSpec
        query : str
        inbox : sequence of Message
            What the agent reads.
        round : int, default=1
            Round (or step) number handed to the backend and recorded in the run.
        level : int, default=0
            Recorded in the run.
        messages : list of dict, optional
            Chat messages to send (default: :func:`build_chat_messages`).
        ledger : TokenLedger, optional
            Gets the run's tokens.
        t0 : float, optional
            ``time.perf_counter()`` of the start of the whole run (for ``started_s``).
        max_new_tokens : int, optional
            Cap on this call's output tokens (see :class:`AgentCall`).
        choice : ChoiceRequest, optional
            A constrained follow-up for backends with ``supports_choice``.

        Returns
        -------
        AgentRun
            Status ``"ok"`` or ``"failed"`` (a failure is logged, never raised).
        """
        backend = self.backend_for(agent)
        call = self.make_call(
            agent,
            query,
            inbox,
            round=round,
            messages=messages,
            max_new_tokens=max_new_tokens,
            choice=choice,
        )
        run = AgentRun(agent.name, round, level, "failed", inputs=[m.sender for m in inbox])
        start = time.perf_counter() if t0 is None else t0
        run = self._run_batch([(backend, call, run)], start)[0]
        if ledger is not None:
            ledger.add(agent.name, run)
        if run.status != "ok":
            logger.warning("agent %s failed: %s", agent.name, run.error)
        return run

    # ------------------------------------------------------------------ a whole run
    def run(self, topology: Topology, query: str) -> ExecutionResult:
        """Run ``topology`` on ``query``; see the module docstring.

        Raises
        ------
        DataValidationError
            For an empty query, a topology without active agents, or an agent without backend.
        """
        if not isinstance(topology, Topology):
            raise DataValidationError(f"expected a Topology, got {type(topology).__name__}")
        if not isinstance(query, str) or not query.strip():
            raise DataValidationError("expected a non-empty query string")
        if topology.n_active_agents == 0:
            raise DataValidationError("the topology has no active agent to run")
        t0 = time.perf_counter()
        ledger = TokenLedger()
        backends = {nm: self.backend_for(topology.agent(nm)) for nm in topology.active_names}
        dec_backend = self.backend_for(topology.decision) if topology.decision else None
        runs: list[AgentRun] = [
            AgentRun(nm, r, -1, "pruned")
            for r in range(1, topology.rounds + 1)
            for nm in topology.pruned_names
        ]
        outputs: dict[tuple[str, int], AgentRun] = {}
        levels = topology.levels()
        temporal = topology.effective_temporal()
        names = topology.names
        multi = topology.rounds > 1
        failed: list[str] = []
        for r in range(1, topology.rounds + 1):
            for k, level in enumerate(levels):
                items = []
                for nm in level:
                    senders: list[tuple[str, int]] = [(p, r) for p in topology.predecessors(nm)]
                    if r > 1:
                        j = names.index(nm)
                        senders = [
                            (names[i], r - 1) for i in range(len(names)) if temporal[i, j]
                        ] + senders
                    inbox, missing = [], []
                    for s, sr in senders:
                        prev = outputs.get((s, sr))
                        if prev is not None and prev.status == "ok":
                            inbox.append(Message(s, prev.output or "", sr))
                        else:
                            missing.append(s if not multi else f"{s}@{sr}")
                    agent = topology.agent(nm)
                    call = AgentCall(
                        agent,
                        query,
                        tuple(inbox),
                        r,
                        build_chat_messages(agent, query, inbox, round=r),
                        self.timeout_s,
                    )
                    run = AgentRun(
                        nm,
                        r,
                        k,
                        "failed",
                        inputs=[m.sender for m in inbox],
                        missing_inputs=missing,
                    )
                    items.append((backends[nm], call, run))
                for run in self._run_batch(items, t0):
                    outputs[(run.agent, r)] = run
                    runs.append(run)
                    ledger.add(run.agent, run)
                    if run.status != "ok":
                        failed.append(run.agent if not multi else f"{run.agent}@{r}")
                        logger.warning("agent %s failed: %s", run.agent, run.error)
        order = topology.topological_order()
        final_round = topology.rounds
        if topology.decision is None and topology.aggregator == "sinks":
            sinks = set(topology.sinks())
            voters = [nm for nm in order if nm in sinks]
        elif topology.decision is None and topology.aggregator == "last":
            voters = order[-1:]
        else:
            voters = order
        answer: str | None = None
        decided_by = topology.aggregator
        if topology.decision is not None and dec_backend is not None:
            d = topology.decision
            inbox = [
                Message(nm, outputs[(nm, final_round)].output or "", final_round)
                for nm in order
                if outputs[(nm, final_round)].status == "ok"
            ]
            call = AgentCall(
                d,
                query,
                tuple(inbox),
                final_round,
                build_chat_messages(d, query, inbox, round=final_round, is_decision=True),
                self.timeout_s,
                is_decision=True,
            )
            drun = AgentRun(d.name, final_round, -1, "failed", inputs=[m.sender for m in inbox])
            drun = self._run_batch([(dec_backend, call, drun)], t0)[0]
            runs.append(drun)
            ledger.add(d.name, drun)
            if drun.status == "ok":
                answer = drun.answer
                decided_by = f"decision:{d.name}"
            else:
                failed.append(d.name)
                logger.warning(
                    "decision agent %s failed (%s); falling back to %s",
                    d.name,
                    drun.error,
                    topology.aggregator,
                )
        if answer is None:
            answers = [
                outputs[(nm, final_round)].answer
                if outputs[(nm, final_round)].status == "ok"
                else None
                for nm in voters
            ]
            answer, _ = aggregate_answers(
                answers, "last" if topology.aggregator == "last" else "majority"
            )
        return ExecutionResult(
            query=query,
            answer=answer,
            decided_by=decided_by,
            runs=runs,
            ledger=ledger,
            failed=failed,
            skipped=list(topology.pruned_names),
            wall_time_s=time.perf_counter() - t0,
            topology=topology,
        )
