"""A simulated multi-agent environment with known truth (offline evaluation of topologies).

Model
-----
* Queries have one of ``k`` latent types (domains). Every query has one correct answer and one
  *trap* answer (the plausible wrong option); every wrong agent gives the trap, the worst case for
  a vote.
* Agent ``j`` has a competence ``c[j, t]`` per type: alone it answers a type-``t`` query correctly
  with probability ``c[j, t]``. Specialists are strong on their own type, generalists are medium
  everywhere, distractors are weak everywhere.
* Propagation rule (agents in topological order, within a round): an agent first forms its own
  answer (correct w.p. ``c``). Then it reads its predecessors' final answers: with ``n_c`` correct
  and ``n_w`` wrong ones, a correct agent stays correct w.p. ``(1 - beta) ** n_w`` (each wrong
  message corrupts it independently w.p. ``beta``) and a wrong agent becomes correct w.p.
  ``1 - (1 - alpha) ** n_c`` (each correct message convinces it independently w.p. ``alpha``).
  With several rounds every agent-round is a node of the unrolled DAG (temporal edges connect
  consecutive rounds) and forms a fresh own answer.
* Decision: the topology's aggregator over final-round answers: ``majority`` of all active
  agents, ``sinks`` (majority of the active sinks) or ``last`` (the last agent in topological
  order). A tie goes to the answer of the first agent in topological order among the voters. A
  decision agent is simulated as a majority vote over everything it reads.
* Tokens: :class:`~dataprune.agents.costs.TokenCostModel` with each agent's prompt and output
  tokens (messages are re-read by their receivers).

Because correctness is binary per node, the accuracy of any topology is computed *exactly* by
dynamic programming over the joint correctness states (``2 ** n_nodes``). For ``n_agents <= 6`` every
sub-graph of the full mesh DAG (pool order) -- 40,069 topologies for 6 agents -- is enumerated and
evaluated exactly per type, which gives the oracle topology and the accuracy-vs-tokens frontier.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataprune.agents.costs import TokenCostModel
from dataprune.agents.mining import Evaluation
from dataprune.agents.pruner import TopologyPruner
from dataprune.agents.spec import AgentSpec
from dataprune.agents.topology import Topology
from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = [
    "DOMAINS",
    "OraclePruner",
    "OracleTable",
    "SimAgent",
    "SimQuery",
    "SimulatedEnvironment",
    "SimulatorConfig",
    "SimulatorEvaluator",
    "make_environment",
]

_MAX_EXACT_NODES = 20
_MAX_ORACLE_AGENTS = 6

# Built-in domains: specialist role/profile and query templates (slots filled at random).
DOMAINS: dict[str, dict[str, Any]] = {
    "math": {
        "name": "math_solver",
        "role": "Math Solver",
        "profile": "You solve arithmetic and algebra word problems step by step, checking every "
        "calculation with numbers, fractions, percentages and units.",
        "templates": [
            "{who} has {a} {item} and buys {b} more packs of {c}. How many {item} does {who} have now?",
            "A shop sells {item} at ${a} each. {who} buys {b} and pays with ${d}. How much change is left?",
            "{who} reads {a} pages a day for {b} days, then {c} pages on the last day. How many pages in total?",
            "A train travels {a} km per hour for {b} hours and then {c} km more. What is the total distance?",
            "What is {a} percent of {d}, plus {b} times {c}?",
            "{who} splits {d} {item} equally among {b} friends and keeps the remainder. How many does each friend get?",
            "Solve for x: {a}x + {b} = {d}. Give x as a fraction if needed.",
        ],
        "slots": {"item": ["apples", "marbles", "stickers", "eggs", "pencils", "cookies"]},
    },
    "law": {
        "name": "legal_expert",
        "role": "Legal Expert",
        "profile": "You are a lawyer who analyses contracts, statutes, liability, company law, "
        "criminal procedure and constitutional rights.",
        "templates": [
            "Under contract law, is a promise by {who} to sell a {thing} enforceable without consideration?",
            "Which statute governs the disqualification of company directors after {event}?",
            "Can {who} sue the landlord for negligence after {event} in the rented {thing}?",
            "Is a verbal agreement to transfer a {thing} valid under the statute of frauds?",
            "What defence can {who} raise against a charge of theft of a {thing} after {event}?",
            "Does the court have jurisdiction over a dispute about a {thing} signed in another state?",
        ],
        "slots": {
            "thing": ["house", "car", "patent", "warehouse", "shareholding", "boat"],
            "event": [
                "an insolvency",
                "a fraud investigation",
                "a fire",
                "a flood",
                "a breach of duty",
            ],
        },
    },
    "code": {
        "name": "programmer",
        "role": "Programming Expert",
        "profile": "You write and debug Python functions: algorithms, string processing, lists, "
        "dictionaries, recursion and unit tests.",
        "templates": [
            "Write a Python function that returns the {op} of a list of integers.",
            'def {fn}(xs: list[int]) -> int:\n    """Return the {op} of xs."""',
            "Fix the bug in this function that should compute the {op} of a string's characters.",
            "Implement a Python function {fn}(s: str) that checks whether s is a {pattern}.",
            "Write a recursive Python function {fn}(n) that computes the {op} of the first n numbers.",
            "Given a dictionary of lists, write Python code returning the key whose list has the largest {op}.",
        ],
        "slots": {
            "op": [
                "sum",
                "maximum",
                "median",
                "product",
                "running total",
                "number of distinct values",
            ],
            "fn": ["solve", "compute", "helper", "count_items", "process"],
            "pattern": ["palindrome", "valid email", "balanced bracket string", "hex number"],
        },
    },
    "medicine": {
        "name": "physician",
        "role": "Physician",
        "profile": "You are a medical doctor who diagnoses symptoms, explains anatomy, "
        "pharmacology, dosages and treatment guidelines.",
        "templates": [
            "A patient presents with {symptom} and {symptom2}. What is the most likely diagnosis?",
            "Which drug class is first-line treatment for a patient with {disease}?",
            "What is the main side effect of long-term {drug} therapy?",
            "Which organ is primarily affected in {disease}, and what test confirms it?",
            "A {age}-year-old has {symptom} after starting {drug}. What should the doctor do?",
        ],
        "slots": {
            "symptom": ["fever", "chest pain", "shortness of breath", "jaundice", "a rash"],
            "symptom2": ["fatigue", "weight loss", "headache", "joint pain"],
            "disease": ["hypertension", "type 2 diabetes", "asthma", "hepatitis B"],
            "drug": ["corticosteroid", "statin", "warfarin", "metformin"],
        },
    },
    "history": {
        "name": "historian",
        "role": "Historian",
        "profile": "You are a historian of wars, empires, revolutions, treaties and the people "
        "and dates that shaped them.",
        "templates": [
            "Which treaty ended the war between {empire} and its neighbours in the {century} century?",
            "Who led {empire} during its expansion in the {century} century?",
            "What was the main cause of the revolution in {empire} in the {century} century?",
            "Which city was the capital of {empire} at the height of its power?",
            "Why did the trade routes of {empire} decline after the {century} century?",
        ],
        "slots": {
            "empire": [
                "the Ottoman Empire",
                "Rome",
                "the Mughal Empire",
                "France",
                "the Ming dynasty",
            ],
            "century": ["12th", "15th", "17th", "18th", "19th"],
        },
    },
    "physics": {
        "name": "physicist",
        "role": "Physicist",
        "profile": "You are a physicist who solves problems in mechanics, electricity, optics, "
        "thermodynamics and energy conservation.",
        "templates": [
            "A ball of mass {a} kg is dropped from {b} m. What is its speed just before impact?",
            "What current flows through a {a} ohm resistor connected to a {b} V battery?",
            "A lens has focal length {a} cm; where is the image of an object {b} cm away?",
            "How much heat is needed to warm {a} kg of water by {b} degrees Celsius?",
            "A car accelerates from rest at {a} m/s^2 for {b} s. How far does it travel?",
        ],
        "slots": {},
    },
}

_DISTRACTORS = [
    ("poet", "Poet", "You write expressive poems and song lyrics about feelings and nature."),
    (
        "motivational_coach",
        "Motivational Coach",
        "You encourage people with upbeat advice about confidence and habits.",
    ),
    ("trivia_buff", "Trivia Enthusiast", "You answer instantly from gut feeling and fun facts."),
    ("chef", "Chef", "You create recipes and explain cooking techniques and flavours."),
]
_GENERALIST = (
    "generalist",
    "General Assistant",
    "You are a helpful general assistant with broad but shallow knowledge of many topics.",
)
_NAMES = ["Ava", "Ben", "Chen", "Dana", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jia"]


@dataclass(frozen=True)
class SimAgent:
    """An agent of the simulated pool (competence per query type, token costs)."""

    name: str
    role: str
    profile: str
    competence: tuple[float, ...]
    prompt_tokens: int
    output_tokens: int
    kind: str = "specialist"

    def spec(self) -> AgentSpec:
        return AgentSpec(
            self.name,
            role=self.role,
            profile=self.profile,
            prompt_tokens=self.prompt_tokens,
            output_tokens=self.output_tokens,
            metadata={"kind": self.kind},
        )


@dataclass(frozen=True)
class SimQuery:
    """A simulated query: its text, latent type, correct answer and trap answer."""

    text: str
    qtype: int
    answer: str
    trap: str
    qid: int


@dataclass(frozen=True)
class SimulatorConfig:
    """Parameters of :func:`make_environment` (ranges are sampled uniformly per agent).

    Parameters
    ----------
    domains : sequence of str
        Query types, names from :data:`DOMAINS` (one specialist each).
    n_generalists, n_distractors : int
    specialist_competence, off_type_competence, generalist_competence, distractor_competence
        ``(low, high)`` ranges of competence.
    alpha, beta : float
        Propagation rule (see the module docstring).
    prompt_tokens, output_tokens : (int, int)
        Ranges of per-call token costs.
    """

    domains: tuple[str, ...] = ("math", "law", "code")
    n_generalists: int = 1
    n_distractors: int = 2
    specialist_competence: tuple[float, float] = (0.75, 0.92)
    off_type_competence: tuple[float, float] = (0.5, 0.7)
    generalist_competence: tuple[float, float] = (0.6, 0.75)
    distractor_competence: tuple[float, float] = (0.15, 0.3)
    alpha: float = 0.7
    beta: float = 0.1
    prompt_tokens: tuple[int, int] = (150, 250)
    output_tokens: tuple[int, int] = (80, 200)


@dataclass
class OracleTable:
    """Every sub-graph of the full mesh DAG with its exact accuracy per type and its tokens.

    Attributes
    ----------
    active : ndarray of bool, shape (n_topologies, n_agents)
    adjacency : ndarray of bool, shape (n_topologies, n_agents, n_agents)
    tokens : ndarray of shape (n_topologies,)
    accuracy : ndarray of shape (n_topologies, n_types)
    """

    active: np.ndarray
    adjacency: np.ndarray
    tokens: np.ndarray
    accuracy: np.ndarray
    _frontier: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tokens)

    def best(self, qtype: int, *, token_penalty: float, reference_tokens: float) -> int:
        """Row maximising ``accuracy - token_penalty * tokens / reference_tokens`` (ties: fewer
        tokens, then first row)."""
        u = self.accuracy[:, qtype] - token_penalty * self.tokens / reference_tokens
        best = u.max()
        cand = np.flatnonzero(u >= best - 1e-12)
        return int(cand[np.argmin(self.tokens[cand])])

    def frontier(self, qtype: int) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, best accuracy with at most that many tokens)``, tokens ascending."""
        if qtype not in self._frontier:
            order = np.argsort(self.tokens, kind="stable")
            t = self.tokens[order]
            acc = np.maximum.accumulate(self.accuracy[order, qtype])
            self._frontier[qtype] = (t, acc)
        return self._frontier[qtype]

    def frontier_accuracy(self, qtype: int, tokens: float) -> float:
        """Best exact accuracy reachable with at most ``tokens`` tokens (0 if none fits)."""
        t, acc = self.frontier(qtype)
        k = np.searchsorted(t, tokens + 1e-9, side="right")
        return float(acc[k - 1]) if k > 0 else 0.0


def _stable_uniform(*parts: Any) -> float:
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return (int.from_bytes(h, "little") >> 11) / float(1 << 53)


_POPCOUNT = np.array([bin(i).count("1") for i in range(1 << 16)], dtype=np.int16)


def _popcount(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    out = _POPCOUNT[x & 0xFFFF].astype(np.int64)
    rest = x >> 16
    while np.any(rest):
        out += _POPCOUNT[rest & 0xFFFF]
        rest >>= 16
    return out


class SimulatedEnvironment:
    """Agents with per-type competence, the propagation rule, token costs, and the oracle.

    Parameters
    ----------
    agents : sequence of SimAgent
    type_names : sequence of str
        One name per query type (length = len(competence) of every agent).
    alpha, beta : float
        Propagation rule (module docstring).
    random_state : int, default=0
        Seeds query generation and the simulated backend's draws.
    """

    def __init__(
        self,
        agents: Sequence[SimAgent],
        type_names: Sequence[str],
        *,
        alpha: float = 0.7,
        beta: float = 0.1,
        random_state: int = 0,
    ) -> None:
        if not agents:
            raise DataValidationError("the simulated environment needs at least one agent")
        k = len(type_names)
        for a in agents:
            if len(a.competence) != k:
                raise DataValidationError(
                    f"agent {a.name!r} has {len(a.competence)} competences but there are {k} types"
                )
            if any(not 0.0 <= c <= 1.0 for c in a.competence):
                raise DataValidationError(f"agent {a.name!r}: competences must be in [0, 1]")
        for v, nm in ((alpha, "alpha"), (beta, "beta")):
            if not 0.0 <= v <= 1.0:
                raise DataValidationError(f"{nm} must be in [0, 1], got {v}")
        self.agents = list(agents)
        self.type_names = list(type_names)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.random_state = int(random_state)
        self._by_name = {a.name: i for i, a in enumerate(self.agents)}
        self._queries: dict[str, SimQuery] = {}
        self._oracle: OracleTable | None = None
        self._acc_cache: dict[tuple[Any, ...], float] = {}

    # ------------------------------------------------------------------ pool and costs
    @property
    def n_agents(self) -> int:
        return len(self.agents)

    @property
    def n_types(self) -> int:
        return len(self.type_names)

    @property
    def competence(self) -> np.ndarray:
        """Array (n_agents, n_types)."""
        return np.array([a.competence for a in self.agents], dtype=np.float64)

    def agent_specs(self) -> list[AgentSpec]:
        return [a.spec() for a in self.agents]

    def cost_model(self) -> TokenCostModel:
        return TokenCostModel(
            prompt_tokens={a.name: a.prompt_tokens for a in self.agents},
            output_tokens={a.name: a.output_tokens for a in self.agents},
        )

    def full_topology(self, **kwargs: Any) -> Topology:
        """The full mesh DAG over the pool (the graph every pruner prunes)."""
        return Topology.full(self.agent_specs(), **kwargs)

    def tokens(self, topology: Topology) -> float:
        return self.cost_model().estimate(topology)

    # ------------------------------------------------------------------ queries
    def make_queries(
        self,
        n: int,
        *,
        texts: Mapping[str, Sequence[str]] | None = None,
        type_weights: Sequence[float] | None = None,
        random_state: int | None = None,
    ) -> list[SimQuery]:
        """Draw ``n`` queries (types at random) and register them for :meth:`lookup`.

        Parameters
        ----------
        texts : mapping of type name to list of str, optional
            Real query texts per type (sampled without replacement while they last); default:
            the built-in templates of :data:`DOMAINS`.
        """
        rng = np.random.default_rng(
            self.random_state + 7919 if random_state is None else random_state
        )
        k = self.n_types
        w = np.full(k, 1.0 / k) if type_weights is None else np.asarray(type_weights, float)
        if w.shape != (k,) or (w < 0).any() or w.sum() <= 0:
            raise DataValidationError(f"type_weights must be {k} non-negative numbers")
        w = w / w.sum()
        pools: dict[int, list[str]] = {}
        if texts is not None:
            for t, name in enumerate(self.type_names):
                if name not in texts or not texts[name]:
                    raise DataValidationError(f"no query texts given for type {name!r}")
                pools[t] = list(rng.permutation(np.array(list(texts[name]), dtype=object)))
        out = []
        start = len(self._queries)
        for i in range(n):
            t = int(rng.choice(k, p=w))
            if texts is not None:
                if not pools[t]:
                    pools[t] = list(
                        rng.permutation(np.array(list(texts[self.type_names[t]]), dtype=object))
                    )
                text = str(pools[t].pop())
            else:
                text = _template_query(self.type_names[t], rng)
            if text in self._queries or any(q.text == text for q in out):
                text = f"{text} (case {start + i})"
            opts = ["A", "B", "C", "D"]
            ans = opts[int(rng.integers(4))]
            trap = opts[(opts.index(ans) + 1 + int(rng.integers(3))) % 4]
            q = SimQuery(text, t, ans, trap, start + i)
            out.append(q)
            self._queries[text] = q
        return out

    def register(self, queries: Sequence[SimQuery]) -> None:
        for q in queries:
            self._queries[q.text] = q

    def lookup(self, text: str) -> SimQuery:
        """The registered query with this text; an unknown text gets a stable hashed type."""
        q = self._queries.get(text)
        if q is not None:
            return q
        u = _stable_uniform("type", self.random_state, text)
        t = min(int(u * self.n_types), self.n_types - 1)
        return SimQuery(text, t, "A", "B", -1)

    # ------------------------------------------------------------------ exact evaluation
    def _nodes(self, topology: Topology) -> tuple[list[int], list[list[int]], list[int]]:
        """Unrolled nodes as pool indices in processing order, predecessor lists, voter nodes."""
        idx = {nm: i for i, nm in enumerate(topology.names)}
        for nm in topology.active_names:
            if nm not in self._by_name:
                raise DataValidationError(
                    f"agent {nm!r} is not in the simulated environment; agents are: "
                    f"{', '.join(self._by_name)}"
                )
        nodes, edges = topology.unrolled()
        pos = {nid: k for k, (nid, _, _) in enumerate(nodes)}
        preds: list[list[int]] = [[] for _ in nodes]
        for s, d in edges:
            preds[pos[d]].append(pos[s])
        agent_of = [self._by_name[nm] for _, nm, _ in nodes]
        del idx
        final = [k for k, (_, _, r) in enumerate(nodes) if r == topology.rounds]
        if topology.decision is not None or topology.aggregator == "majority":
            voters = final
        elif topology.aggregator == "sinks":
            sinks = set(topology.sinks())
            voters = [k for k in final if nodes[k][1] in sinks]
        else:  # last
            voters = final[-1:]
        return agent_of, preds, voters

    def expected_accuracy(self, topology: Topology, qtype: int) -> float:
        """Exact probability that ``topology`` answers a type-``qtype`` query correctly."""
        key = (topology.key(), topology.aggregator, topology.decision is not None, qtype)
        if key in self._acc_cache:
            return self._acc_cache[key]
        if topology.n_active_agents == 0:
            return 0.0
        agent_of, preds, voters = self._nodes(topology)
        m = len(agent_of)
        if m > _MAX_EXACT_NODES:
            raise DataValidationError(
                f"exact evaluation supports at most {_MAX_EXACT_NODES} agent-rounds, got {m}; "
                "use simulate() for Monte Carlo estimates"
            )
        comp = self.competence[:, qtype]
        p = np.zeros(1 << m)
        p[0] = 1.0
        for u in range(m):
            states = np.arange(1 << u, dtype=np.int64)
            pm = 0
            for v in preds[u]:
                pm |= 1 << v
            nc = _popcount(states & pm)
            nw = len(preds[u]) - nc
            c = comp[agent_of[u]]
            pc = c * (1 - self.beta) ** nw + (1 - c) * (1 - (1 - self.alpha) ** nc)
            cur = p[: 1 << u].copy()
            p[: 1 << u] = cur * (1 - pc)
            p[1 << u : 1 << (u + 1)] = cur * pc
        states = np.arange(1 << m, dtype=np.int64)
        vm = 0
        for v in voters:
            vm |= 1 << v
        cnt = _popcount(states & vm)
        nv = len(voters)
        first = min(voters)
        win = (2 * cnt > nv) | ((2 * cnt == nv) & (((states >> first) & 1) == 1))
        acc = float(p[win].sum())
        self._acc_cache[key] = acc
        return acc

    def simulate(
        self,
        topology: Topology,
        query: SimQuery,
        *,
        random_state: int | np.random.Generator | None = None,
    ) -> bool:
        """One Monte Carlo run of the propagation rule; True when the decision is correct."""
        rng = np.random.default_rng(random_state)
        agent_of, preds, voters = self._nodes(topology)
        comp = self.competence[:, query.qtype]
        correct = np.zeros(len(agent_of), dtype=bool)
        for u, a in enumerate(agent_of):
            own = rng.random() < comp[a]
            nc = int(sum(correct[v] for v in preds[u]))
            nw = len(preds[u]) - nc
            if own:
                correct[u] = rng.random() < (1 - self.beta) ** nw
            else:
                correct[u] = rng.random() < 1 - (1 - self.alpha) ** nc
        cnt = int(correct[voters].sum())
        if 2 * cnt != len(voters):
            return 2 * cnt > len(voters)
        return bool(correct[min(voters)])

    # ------------------------------------------------------------------ oracle
    def oracle_table(self) -> OracleTable:
        """Every sub-graph of the full mesh DAG, evaluated exactly (``n_agents <= 6``)."""
        if self._oracle is None:
            self._oracle = self._build_oracle()
        return self._oracle

    def _build_oracle(self) -> OracleTable:
        n = self.n_agents
        if n > _MAX_ORACLE_AGENTS:
            raise DataValidationError(
                f"the brute-force oracle supports at most {_MAX_ORACLE_AGENTS} agents, got {n}"
            )
        comp = self.competence
        cm = self.cost_model()
        full = self.full_topology()
        pt, ot = cm.agent_costs(full)
        acts, adjs, toks, accs = [], [], [], []
        for subset_bits in range(1, 1 << n):
            S = [i for i in range(n) if subset_bits >> i & 1]
            m = len(S)
            pairs = [(a, b) for b in range(m) for a in range(b)]
            n_e = 1 << len(pairs)
            e = np.arange(n_e, dtype=np.int64)
            predmask = np.zeros((n_e, m), dtype=np.int64)
            edge_cost = np.zeros(n_e)
            A = np.zeros((n_e, n, n), dtype=bool)
            for k, (a, b) in enumerate(pairs):
                bit = (e >> k) & 1
                predmask[:, b] |= bit << a
                edge_cost += bit * ot[S[a]]
                A[:, S[a], S[b]] = bit.astype(bool)
            base = float(sum(pt[i] + ot[i] for i in S))
            acc_t = np.zeros((n_e, self.n_types))
            states_all = np.arange(1 << m, dtype=np.int64)
            cnt = _popcount(states_all)
            win = (2 * cnt > m) | ((2 * cnt == m) & ((states_all & 1) == 1))
            for t in range(self.n_types):
                p = np.zeros((n_e, 1 << m))
                p[:, 0] = 1.0
                for b in range(m):
                    st = np.arange(1 << b, dtype=np.int64)
                    pm = predmask[:, b][:, None]
                    nc = _popcount(st[None, :] & pm)
                    npred = _popcount(predmask[:, b])[:, None]
                    nw = npred - nc
                    c = comp[S[b], t]
                    pc = c * (1 - self.beta) ** nw + (1 - c) * (1 - (1 - self.alpha) ** nc)
                    cur = p[:, : 1 << b].copy()
                    p[:, : 1 << b] = cur * (1 - pc)
                    p[:, 1 << b : 1 << (b + 1)] = cur * pc
                acc_t[:, t] = p[:, win].sum(axis=1)
            act = np.zeros((n_e, n), dtype=bool)
            act[:, S] = True
            acts.append(act)
            adjs.append(A)
            toks.append(base + edge_cost)
            accs.append(acc_t)
        table = OracleTable(
            np.concatenate(acts), np.concatenate(adjs), np.concatenate(toks), np.concatenate(accs)
        )
        logger.info(
            "oracle: evaluated %d sub-graphs exactly for %d types", len(table), self.n_types
        )
        return table

    def oracle_topology(
        self, qtype: int, *, token_penalty: float = 0.1, aggregator: str = "majority"
    ) -> Topology:
        """The utility-optimal sub-graph for a type (utility = accuracy - penalty * tokens/full)."""
        table = self.oracle_table()
        ref = self.tokens(self.full_topology())
        k = table.best(qtype, token_penalty=token_penalty, reference_tokens=ref)
        return Topology(
            self.agent_specs(),
            table.adjacency[k],
            active=table.active[k],
            aggregator=aggregator,
            metadata={"pruner": "oracle", "qtype": self.type_names[qtype]},
        )


def _template_query(domain: str, rng: np.random.Generator) -> str:
    spec = DOMAINS.get(domain)
    if spec is None:  # a user-named type without built-in templates
        return f"A {domain} question (case {int(rng.integers(10**6))}): which option is correct?"
    tpl = spec["templates"][int(rng.integers(len(spec["templates"])))]
    values: dict[str, Any] = {
        "who": _NAMES[int(rng.integers(len(_NAMES)))],
        "a": int(rng.integers(2, 60)),
        "b": int(rng.integers(2, 30)),
        "c": int(rng.integers(2, 20)),
        "d": int(rng.integers(60, 500)),
        "age": int(rng.integers(20, 85)),
    }
    for slot, choices in spec["slots"].items():
        values[slot] = choices[int(rng.integers(len(choices)))]
    return tpl.format(**values)


def make_environment(
    config: SimulatorConfig | None = None, *, random_state: int = 0
) -> SimulatedEnvironment:
    """Build a pool: one specialist per domain, generalists and distractors (shuffled order).

    Competences and token costs are drawn from the config's ranges with ``random_state``.
    """
    cfg = config or SimulatorConfig()
    for d in cfg.domains:
        if d not in DOMAINS:
            raise DataValidationError(f"unknown domain {d!r}; valid: {', '.join(DOMAINS)}")
    if cfg.n_distractors > len(_DISTRACTORS):
        raise DataValidationError(f"at most {len(_DISTRACTORS)} distractors are built in")
    rng = np.random.default_rng(random_state)
    k = len(cfg.domains)

    def u(lo_hi: tuple[float, float], size: int | None = None) -> Any:
        return rng.uniform(lo_hi[0], lo_hi[1], size)

    def toks() -> tuple[int, int]:
        return (
            int(rng.integers(cfg.prompt_tokens[0], cfg.prompt_tokens[1] + 1)),
            int(rng.integers(cfg.output_tokens[0], cfg.output_tokens[1] + 1)),
        )

    agents: list[SimAgent] = []
    for t, d in enumerate(cfg.domains):
        comp = u(cfg.off_type_competence, k)
        comp[t] = u(cfg.specialist_competence)
        pt, ot = toks()
        spec = DOMAINS[d]
        agents.append(
            SimAgent(
                spec["name"],
                spec["role"],
                spec["profile"],
                tuple(comp.round(4)),
                pt,
                ot,
                "specialist",
            )
        )
    for g in range(cfg.n_generalists):
        pt, ot = toks()
        name = _GENERALIST[0] if cfg.n_generalists == 1 else f"{_GENERALIST[0]}_{g}"
        agents.append(
            SimAgent(
                name,
                _GENERALIST[1],
                _GENERALIST[2],
                tuple(u(cfg.generalist_competence, k).round(4)),
                pt,
                ot,
                "generalist",
            )
        )
    for dname, role, profile in _DISTRACTORS[: cfg.n_distractors]:
        pt, ot = toks()
        agents.append(
            SimAgent(
                dname,
                role,
                profile,
                tuple(u(cfg.distractor_competence, k).round(4)),
                pt,
                ot,
                "distractor",
            )
        )
    order = rng.permutation(len(agents))
    agents = [agents[i] for i in order]
    return SimulatedEnvironment(
        agents, cfg.domains, alpha=cfg.alpha, beta=cfg.beta, random_state=random_state
    )


class SimulatorEvaluator:
    """Evaluator for Stage I mining and policy-gradient baselines on the simulator.

    Parameters
    ----------
    env : SimulatedEnvironment
    mode : {"sample", "expected"}, default="sample"
        ``"sample"``: the fraction of ``n_repeats`` independent runs that were correct (what
        running real agents gives); ``"expected"``: the exact accuracy of the query's type.
    n_repeats : int, default=1
    random_state : int, default=0

    Notes
    -----
    ``Evaluation.tokens`` is the expected tokens of ONE run of the topology (the utility's cost
    term), whatever ``n_repeats``; ``n_calls`` counts ``evaluate`` calls.
    """

    def __init__(
        self,
        env: SimulatedEnvironment,
        *,
        mode: str = "sample",
        n_repeats: int = 1,
        random_state: int = 0,
    ) -> None:
        if mode not in ("sample", "expected"):
            raise DataValidationError(f"unknown evaluator mode {mode!r}; valid: expected, sample")
        if n_repeats < 1:
            raise DataValidationError(f"n_repeats must be >= 1, got {n_repeats}")
        self.env = env
        self.mode = mode
        self.n_repeats = n_repeats
        self.rng = np.random.default_rng(random_state)
        self.n_calls = 0

    def evaluate(self, query: str, topology: Topology) -> Evaluation:
        self.n_calls += 1
        q = self.env.lookup(query)
        p = self.env.expected_accuracy(topology, q.qtype)
        tokens = self.env.tokens(topology)
        if self.mode == "expected":
            return Evaluation(p, tokens)
        return Evaluation(self.rng.binomial(self.n_repeats, p) / self.n_repeats, tokens)


class OraclePruner(TopologyPruner):
    """Upper bound for benchmarks: the exact utility-optimal sub-graph for the query's TRUE type.

    It reads the latent type from the environment, which no real pruner can do.
    """

    name = "oracle"

    def __init__(
        self, env: SimulatedEnvironment, *, token_penalty: float = 0.1, aggregator: str = "majority"
    ) -> None:
        self.env = env
        self.token_penalty = token_penalty
        self.aggregator = aggregator

    def fit(
        self, records: Any = None, *, queries: Any = None, evaluator: Any = None
    ) -> OraclePruner:
        self.agents_ = tuple(self.env.agent_specs())
        self._by_type = {
            t: self.env.oracle_topology(
                t, token_penalty=self.token_penalty, aggregator=self.aggregator
            )
            for t in range(self.env.n_types)
        }
        return self

    def predict(self, query: str) -> Topology:
        self._check_fitted()
        return self._by_type[self.env.lookup(query).qtype]._replace()
