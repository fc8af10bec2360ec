"""PriorDynaFlow on a real backend: the wiring, not the accuracy.

Run:  .venv/bin/python benchmarks/agents_flow_real.py [--n-questions 20]   (resumable per question)
      .venv/bin/python benchmarks/agents_flow_real.py --render-only

The local Hugging Face backend (:class:`~dataprune.agents.executor.HFLocalBackend`,
SmolLM2-135M-Instruct, offline, greedy decoding) answers for a pool of three agents -- solver,
checker, summariser -- on the first GSM8K test questions (``../shared/data/gsm8k/test.jsonl``).
The :class:`~dataprune.agents.flow.FlowPolicy` is trained in seconds on a simulator pool with the
same three agent names and token costs (one query type; competences 0.5 / 0.45 / 0.35 are a
guess, not measured; progress reports wrong 20 % of the time), then run on the real backend
through :class:`~dataprune.agents.flow.FlowExecutor` with ``max_steps`` 4 and a per-query token
budget of about two calls (``--policy cold``: the untrained policy instead, where each agent's
own proposal decides and no usable suffix means STOP). An agent whose reply has no usable
``NEXT: ...; PROGRESS: ...`` line makes no proposal; the policy then follows its Q-values for
hand-overs that were not proposed. Reported per question: the path, every step's parsed suffix
(or why it could not be parsed), tokens from the executor's ledger, whether the budget stop
fired, and whether the final answer's last number equals the reference (exact match). A model of
135M parameters solves few GSM8K problems: the accuracy is not the point, the wiring is. Writes
benchmarks/results/agents_flow_real.{json,md} and rebuilds benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import _common as common  # noqa: E402

NAME = "agents_flow_real"
#: Completion-token cap per agent call.
MAX_NEW_TOKENS = 160
#: Expected prompt tokens of one call (system prompt, question, flow instruction), for the
#: budget check before a call; the ledger records the real counts.
PROMPT_TOKENS = 260
#: Tokens per question: about two calls (each ~PROMPT_TOKENS + MAX_NEW_TOKENS, plus reading).
TOKEN_BUDGET = 1000
MAX_STEPS = 4
#: How the NEXT/PROGRESS line is obtained ("auto": the local backend's constrained follow-up).
SUFFIX = "auto"
TIMEOUT_S = 300.0

POOL = [
    {
        "name": "solver",
        "role": "Math Solver",
        "profile": "You are a careful math solver. Solve grade-school math word problems step by "
        "step and give the final number.",
    },
    {
        "name": "checker",
        "role": "Checker",
        "profile": "You check another agent's solution to a math word problem: redo the "
        "calculation and correct the final number if it is wrong.",
    },
    {
        "name": "summariser",
        "role": "Summariser",
        "profile": "You read the other agents' work on a math word problem and state the final "
        "numeric answer in one short sentence.",
    },
]

#: Competences of the simulated twin the policy is trained on (a guess, not measured).
SIM_COMPETENCE = (0.5, 0.45, 0.35)
SIM_PROGRESS_NOISE = 0.2

_NUM_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def reference_answer(answer_field: str) -> str:
    """The number after ``####`` in a GSM8K answer."""
    return answer_field.split("####")[-1].strip().replace(",", "")


def last_number(text: str | None) -> str | None:
    """The last number in ``text`` (commas removed, a trailing ``.0`` dropped)."""
    if not text:
        return None
    hits = _NUM_RE.findall(text)
    if not hits:
        return None
    v = hits[-1].replace(",", "")
    if re.fullmatch(r"-?\d+\.0+", v):
        v = v.split(".")[0]
    return v


def agents() -> list[Any]:
    from dataprune.agents import AgentSpec

    return [AgentSpec(**a, prompt_tokens=PROMPT_TOKENS, output_tokens=MAX_NEW_TOKENS) for a in POOL]


def make_policy(kind: str, suffix: str = SUFFIX) -> Any:
    """``"simulator"``: trained on a simulated twin of the pool; ``"cold"``: untrained."""
    from dataprune.agents import FlowConfig, FlowPolicy
    from dataprune.agents.flow import FlowEvaluator
    from dataprune.agents.simulator import SimAgent, SimulatedEnvironment, SimulatorFlowEvaluator

    pool = agents()
    cfg = FlowConfig(
        max_steps=MAX_STEPS, token_budget=TOKEN_BUDGET, start_agent="solver", suffix=suffix
    )
    if kind == "cold":
        ev = FlowEvaluator(None, lambda q, a: 0.0, agents=pool)
        return FlowPolicy(config=replace(cfg, n_epochs=0), random_state=0).fit([], ev)
    sim = [
        SimAgent(a.name, a.role, a.profile, (c,), PROMPT_TOKENS, MAX_NEW_TOKENS)
        for a, c in zip(pool, SIM_COMPETENCE)
    ]
    env = SimulatedEnvironment(sim, ["math"], random_state=0)
    train = [q.text for q in env.make_queries(200, random_state=1)]
    ev = SimulatorFlowEvaluator(env, progress_noise=SIM_PROGRESS_NOISE, scenario="gsm8k-twin")
    return FlowPolicy(pool, config=cfg, random_state=0).fit(train, ev)


def run_question(runner: Any, policy: Any, rec: dict, index: int) -> dict:
    ref = reference_answer(rec["answer"])
    trace = runner.run_flow(policy, rec["question"])
    pred = last_number(trace.answer)
    steps = []
    for s in trace.steps:
        p = s.proposal
        steps.append(
            {
                "agent": s.agent,
                "status": s.run.status,
                "prompt_tokens": s.run.prompt_tokens,
                "completion_tokens": s.run.completion_tokens,
                "suffix_raw": p.raw,
                "next": p.next,
                "progress": p.progress,
                "parse_issue": p.issue,
                "parsed": p.issue is None and (p.next is not None or p.progress is not None),
                "answer": s.run.answer,
                "output_tail": (s.run.output or "")[-300:],
            }
        )
    return {
        "index": index,
        "question": rec["question"],
        "reference": ref,
        "path": trace.path,
        "decisions": [d.to_dict() for d in trace.decisions],
        "steps": steps,
        "stopped_by": trace.stopped_by,
        "budget_stop": trace.stopped_by == "budget",
        "ledger_tokens": trace.ledger.total_tokens,
        "ledger": trace.ledger.to_dict(),
        "answer": trace.answer,
        "predicted_number": pred,
        "exact_match": pred is not None and pred == ref,
        "wall_time_s": trace.wall_time_s,
    }


def policy_text(res: dict) -> str:
    """How the policy was obtained, from the saved settings."""
    if res.get("policy") == "cold":
        return (
            "cold-start `FlowPolicy` (no training: each agent's own `NEXT: ...; PROGRESS: ...` "
            "proposal decides, no usable suffix means STOP)."
        )
    comp = ", ".join(f"{a['name']} {c}" for a, c in zip(res["pool"], res.get("sim_competence", [])))
    return (
        "`FlowPolicy` trained on a simulated twin of the pool (same names and token costs, one "
        f"query type, competences {comp} -- a guess, not measured -- progress reports wrong "
        f"{100 * res.get('sim_progress_noise', 0):.0f}% of the time); without a usable suffix "
        "an agent makes no proposal and the policy follows its Q-values for unproposed "
        "hand-overs. Learned table: `"
        + " / ".join(ln.strip() for ln in res.get("policy_table", "").splitlines()[1:])
        + "`."
    )


def suffix_text(mode: str) -> str:
    """How the NEXT/PROGRESS line was obtained, from the saved ``FlowConfig.suffix``."""
    if mode == "instruct":
        return (
            "Suffix mode `instruct`: the prompt asks each agent to end its reply with the "
            "`NEXT: ...; PROGRESS: ...` line."
        )
    return (
        f"Suffix mode `{mode}`: the prompt asks for no line; after each reply the backend asks a "
        "constrained follow-up and picks NEXT among the allowed agents and STOP by likelihood, "
        "PROGRESS as the likelihood-weighted mean of 0, 0.25, 0.5, 0.75, 1 (those tokens count "
        "as prompt tokens in the ledger)."
    )


def render(res: dict) -> str:
    qs = res["questions"]
    n = len(qs)
    steps = [len(q["path"]) for q in qs]
    all_steps = [s for q in qs for s in q["steps"]]
    parsed = sum(s["parsed"] for s in all_steps)
    stops: dict[str, int] = {}
    for q in qs:
        stops[q["stopped_by"]] = stops.get(q["stopped_by"], 0) + 1
    em = sum(q["exact_match"] for q in qs)
    proposed: dict[str, int] = {}
    for st in all_steps:
        if st["parsed"] and st["next"] is not None:
            proposed[st["next"]] = proposed.get(st["next"], 0) + 1
    progress = [st["progress"] for st in all_steps if st["progress"] is not None]
    tok = [q["ledger_tokens"] for q in qs]
    over = sum(t > res["token_budget"] for t in tok)
    lines = [
        "## PriorDynaFlow on a real backend (`benchmarks/agents_flow_real.py`)",
        "",
        f"Command: `{res['command'].strip()}` (resumable per question; `--render-only` rebuilds this "
        f"section). Backend: local Hugging Face `{res['model']}` (greedy, at most "
        f"{res['max_new_tokens']} new tokens per call, {res['torch_threads']} CPU thread(s)), "
        f"agents {', '.join(a['name'] for a in res['pool'])}; {policy_text(res)} Start agent "
        f"`solver`, `max_steps` {res['max_steps']}, token budget {res['token_budget']} per "
        f"question (an agent runs only if its expected {res['prompt_tokens']} prompt + "
        f"{res['max_new_tokens']} output tokens plus what it reads still fit; its output is then "
        "capped at what the budget leaves after its prompt, counted with the tokenizer before "
        f"the call). {suffix_text(res.get('suffix', 'instruct'))} First {n} GSM8K "
        "test questions. " + common.machine_sentence(res.get("machine")),
        "",
        f"**Accuracy is not the point of this run** (a 135M-parameter model): it shows the wiring "
        f"-- the suffix protocol on real generations, the ledger and the budget stop. Exact match "
        f"(last number of the final answer = the reference): {em}/{n}.",
        "",
        f"Steps per question: mean {np.mean(steps):.2f} (min {min(steps)}, max {max(steps)}). "
        f"Suffix parsed on {parsed}/{len(all_steps)} agent calls "
        f"({100 * parsed / max(1, len(all_steps)):.0f}%). Stop reasons: "
        + ", ".join(f"{k} {v}" for k, v in sorted(stops.items()))
        + f". Ledger tokens per question: mean {np.mean(tok):.0f} (max {max(tok)}); "
        f"{over} question(s) over the budget of {res['token_budget']}. Proposed NEXT: "
        + (", ".join(f"{k} {v}" for k, v in sorted(proposed.items())) or "none")
        + (
            f"; PROGRESS reported: mean {np.mean(progress):.2f} (min {min(progress):.2f}, "
            f"max {max(progress):.2f})."
            if progress
            else "; no PROGRESS reported."
        ),
        "",
        "| # | path | suffix per step (NEXT, PROGRESS, or the parse failure) | ledger tokens | budget stop | stopped by | answer | reference | exact match |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(s: dict) -> str:
        if s["status"] != "ok":
            return f"{s['agent']}: call {s['status']}"
        if s["parse_issue"]:
            return f"{s['agent']}: parse failure ({s['parse_issue'][:60]})"
        return f"{s['agent']}: NEXT {s['next']}, PROGRESS {s['progress']}"

    for q in qs:
        path = " → ".join([*q["path"], "STOP"])
        sfx = "; ".join(cell(s) for s in q["steps"]).replace("|", "/")
        ans = (q["predicted_number"] or "—").replace("|", "/")
        lines.append(
            f"| {q['index']} | {path} | {sfx} | {q['ledger_tokens']} | "
            f"{'yes' if q['budget_stop'] else 'no'} | {q['stopped_by']} | {ans} | "
            f"{q['reference']} | {'yes' if q['exact_match'] else 'no'} |"
        )
    wall = sum(q["wall_time_s"] for q in qs)
    lines += [
        "",
        f"Generation time: {wall:.0f} s in all ({wall / max(1, n):.1f} s per question).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-questions", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--policy", choices=["simulator", "cold"], default="simulator")
    ap.add_argument(
        "--suffix",
        choices=["auto", "instruct", "choose"],
        default=SUFFIX,
        help="FlowConfig.suffix: how the NEXT/PROGRESS line is obtained",
    )
    ap.add_argument("--no-resume", action="store_true", help="ignore checkpointed questions")
    ap.add_argument(
        "--output-dir", type=Path, default=common.RESULTS, help="where the results go (smoke runs)"
    )
    common.add_render_only(ap, NAME)
    args = ap.parse_args()
    if args.render_only:
        common.render_from_json(NAME, render)
        return
    data_path = common.SHARED_DATA / "gsm8k" / "test.jsonl"
    common.need_data(data_path, "GSM8K test split")
    records = common.gsm8k("test")[: args.n_questions]
    machine = common.machine_info(["torch", "transformers"])
    import torch

    torch.set_num_threads(args.threads)
    from dataprune.agents import FlowExecutor
    from dataprune.agents.executor import HFLocalBackend
    from dataprune.cache import cache_dir

    settings = {
        "max_new_tokens": MAX_NEW_TOKENS,
        "prompt_tokens": PROMPT_TOKENS,
        "token_budget": TOKEN_BUDGET,
        "max_steps": MAX_STEPS,
        "pool": POOL,
        "policy": args.policy,
        "sim_competence": list(SIM_COMPETENCE),
        "sim_progress_noise": SIM_PROGRESS_NOISE,
        "suffix": args.suffix,
    }
    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    ckpt = cache_dir("benchmarks") / f"{NAME}-{key}.jsonl"
    done: dict[int, dict] = {}
    if ckpt.exists() and not args.no_resume:
        for line in ckpt.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by an interruption
                continue
            done[rec["index"]] = rec
        print(f"resuming: {len(done)} questions in {ckpt}", flush=True)
    backend = HFLocalBackend(max_new_tokens=MAX_NEW_TOKENS)
    runner = FlowExecutor(backend, timeout_s=TIMEOUT_S, max_retries=0)
    policy = make_policy(args.policy, args.suffix)
    settings["policy_table"] = policy.describe()
    t0 = time.perf_counter()
    out = []
    for i, rec in enumerate(records):
        if i in done:
            out.append(done[i])
            continue
        r = run_question(runner, policy, rec, i)
        with open(ckpt, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(r) + "\n")
        out.append(r)
        print(
            f"[{i}] path {' -> '.join(r['path'])} stop {r['stopped_by']} tokens "
            f"{r['ledger_tokens']} parsed {[s['parsed'] for s in r['steps']]} answer "
            f"{r['predicted_number']} ref {r['reference']} ({time.perf_counter() - t0:.0f}s)",
            flush=True,
        )
    res = {
        "command": " ".join(["python benchmarks/agents_flow_real.py", *sys.argv[1:]]),
        "model": backend.describe()["model"],
        "torch_threads": args.threads,
        **settings,
        "questions": out,
        "wall_time_s": time.perf_counter() - t0,
        "machine": common.record_end_load(machine),
    }
    common.publish(NAME, render(res), res, out_dir=args.output_dir)
    print(render(res).split("\n\n")[2])


if __name__ == "__main__":
    main()
