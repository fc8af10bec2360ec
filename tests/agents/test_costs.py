"""The token cost model's estimate equals what the executor charges on the simulated backend."""

from __future__ import annotations

import pytest

from dataprune.agents import AgentSpec, Executor, SimulatedBackend
from dataprune.agents.simulator import make_environment


@pytest.mark.parametrize("shape", ["full", "judged", "pruned", "two rounds"])
def test_estimate_equals_the_executed_ledger(shape):
    env = make_environment(random_state=0)
    top = {
        "full": lambda: env.full_topology(),
        "judged": lambda: env.full_topology(decision=AgentSpec("judge")),
        "pruned": lambda: env.full_topology().prune(agents=[env.agents[1].name]),
        "two rounds": lambda: env.full_topology(rounds=2),
    }[shape]()
    q = env.make_queries(1, random_state=4)[0]
    charged = Executor(SimulatedBackend(env)).run(top, q.text).ledger.total_tokens
    assert env.tokens(top) == charged


def test_a_decision_agent_costs_its_prompt_its_output_and_every_final_answer_it_reads():
    env = make_environment(random_state=0)
    model = env.cost_model()
    plain, judged = env.full_topology(), env.full_topology(decision=AgentSpec("judge"))
    _, outputs = model.agent_costs(plain)
    extra = model.default_prompt_tokens + model.default_output_tokens + outputs.sum()
    assert model.estimate(judged) - model.estimate(plain) == pytest.approx(extra)
    priced = env.full_topology(decision=AgentSpec("judge", prompt_tokens=10, output_tokens=5))
    assert model.estimate(priced) - model.estimate(plain) == pytest.approx(15 + outputs.sum())
