from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dataprune.agents import AgentSpec, Executor, LLMConfig, OpenAIChatBackend, Topology
from dataprune.agents.executor import (
    AgentCall,
    BackendError,
    ChatBackend,
    Completion,
    HFLocalBackend,
    extract_answer,
)
from dataprune.errors import DataValidationError


class Recorder(ChatBackend):
    """Deterministic agents: answer 'Answer: <name>-<n inbox>'; records calls and timing."""

    def __init__(self, delay=0.0, fail=None, fatal=(), answers=None):
        self.calls: list[AgentCall] = []
        self.spans: dict[str, tuple[float, float]] = {}
        self.delay = delay
        self.fail = dict(fail or {})
        self.fatal = set(fatal)
        self.answers = answers or {}
        self.lock = threading.Lock()

    def complete(self, call):
        t0 = time.perf_counter()
        with self.lock:
            self.calls.append(call)
        if self.delay:
            time.sleep(self.delay)
        name = call.agent.name
        if name in self.fatal:
            raise BackendError("bad request", retryable=False)
        with self.lock:
            if self.fail.get(name, 0) > 0:
                self.fail[name] -= 1
                raise BackendError("temporarily unavailable")
        self.spans[name] = (t0, time.perf_counter())
        ans = self.answers.get(name, f"{name}-{len(call.inbox)}")
        return Completion(f"thinking...\nAnswer: {ans}", 10 + len(call.inbox), 5, "usage", "rec")


AG = ["a", "b", "c", "d"]


def test_levels_run_concurrently_and_pruned_agents_are_skipped():
    top = Topology.from_edges(AG, [("a", "d"), ("b", "d"), ("c", "d")]).prune(agents=["c"])
    rec = Recorder(delay=0.3)
    res = Executor(rec, max_workers=4).run(top, "task")
    called = sorted(c.agent.name for c in rec.calls)
    assert called == ["a", "b", "d"] and res.skipped == ["c"]
    assert res.run_of("c").status == "pruned" and res.run_of("c").attempts == 0
    (a0, a1), (b0, b1), (d0, _) = rec.spans["a"], rec.spans["b"], rec.spans["d"]
    assert max(a0, b0) < min(a1, b1)  # a and b overlapped (same level)
    assert d0 >= max(a1, b1)  # d waited for both
    d_call = next(c for c in rec.calls if c.agent.name == "d")
    assert [m.sender for m in d_call.inbox] == ["a", "b"]
    assert "[a, round 1]" in d_call.messages[1]["content"]
    assert (
        res.ledger.agents["d"].prompt_tokens == 12 and res.ledger.total_tokens == 10 + 10 + 12 + 15
    )
    assert res.ok and res.decided_by == "majority"


def test_majority_last_and_decision_agent():
    rec = Recorder(answers={"a": "X", "b": "Y", "c": "Y", "d": "X", "judge": "Z"})
    ex = Executor(rec)
    full = Topology(AG, [[0] * 4] * 4)
    assert ex.run(full, "q").answer == "X"  # 2-2 tie -> first voter in topological order
    assert ex.run(full.prune(agents=["a"]), "q").answer == "Y"
    assert ex.run(Topology.chain(AG), "q").answer == "X"  # chain preset decides by the last agent
    withj = Topology(AG, [[0] * 4] * 4, decision=AgentSpec("judge"))
    res = ex.run(withj, "q")
    assert res.answer == "Z" and res.decided_by == "decision:judge"
    judge_call = [c for c in rec.calls if c.agent.name == "judge"][-1]
    assert judge_call.is_decision and [m.sender for m in judge_call.inbox] == AG


def test_retries_then_success_and_failures_reported():
    rec = Recorder(fail={"a": 2}, fatal={"b"})
    ex = Executor(rec, max_retries=2, retry_backoff_s=0.01)
    res = ex.run(Topology.from_edges(["a", "b", "c"], [("a", "c"), ("b", "c")]), "q")
    assert res.run_of("a").status == "ok" and res.run_of("a").attempts == 3
    b = res.run_of("b")
    assert b.status == "failed" and b.attempts == 1 and "bad request" in b.error
    assert res.failed == ["b"] and not res.ok
    c = res.run_of("c")
    assert c.status == "ok" and c.inputs == ["a"] and c.missing_inputs == ["b"]
    assert res.ledger.agents["a"].calls == 3 and res.ledger.agents["a"].failed_calls == 2
    rec2 = Recorder(fail={"a": 5})
    res2 = Executor(rec2, max_retries=1, retry_backoff_s=0.01).run(Topology.full(["a"]), "q")
    assert res2.failed == ["a"] and res2.answer is None


def test_decision_failure_falls_back_to_aggregator():
    rec = Recorder(fatal={"judge"}, answers={"a": "X", "b": "X"})
    res = Executor(rec).run(Topology.full(["a", "b"], decision=AgentSpec("judge")), "q")
    assert res.answer == "X" and res.decided_by == "majority" and "judge" in res.failed


def test_executor_validation():
    ex = Executor(Recorder())
    with pytest.raises(DataValidationError, match="non-empty query"):
        ex.run(Topology.full(AG), "  ")
    with pytest.raises(DataValidationError, match="no active agent"):
        ex.run(Topology.full(["a"], active=[False]), "q")
    with pytest.raises(DataValidationError, match="agent 'a' has no backend"):
        Executor().run(Topology.full(["a"]), "q")


def test_extract_answer():
    assert extract_answer("blah\nAnswer: 42.") == "42"
    assert extract_answer("Final answer is: B") == "B"
    assert extract_answer("just this line\n") == "just this line"
    assert extract_answer("") is None


# ---------------------------------------------------------------- OpenAI-compatible endpoint
class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):  # silence
        pass

    def do_POST(self):
        st = self.server.state  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        st["requests"].append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        mode = st["mode"]
        if mode == "flaky" and st["n"] == 0:
            st["n"] += 1
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(b"overloaded")
            return
        if mode == "unauthorized":
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"error": "invalid api key"}')
            return
        if mode == "slow":
            time.sleep(1.0)
        user = body["messages"][-1]["content"]
        n_inbox = user.count("[") if "Messages from other agents" in user else 0
        resp = {
            "model": body["model"],
            "choices": [{"message": {"role": "assistant", "content": f"Answer: {n_inbox}"}}],
        }
        if mode != "no_usage":
            resp["usage"] = {"prompt_tokens": 7 + n_inbox, "completion_tokens": 3}
        data = json.dumps(resp).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.state = {"requests": [], "mode": "ok", "n": 0}
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv):
    return f"http://127.0.0.1:{srv.server_address[1]}/v1"


def test_openai_backend_usage_prompts_and_agent_llm_config(server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    llm = LLMConfig("openai", model="m1", base_url=_url(server), api_key_env="TEST_KEY")
    agents = [AgentSpec(n, profile=f"You are {n}.", llm=llm) for n in ["a", "b", "c"]]
    top = Topology.from_edges(agents, [("a", "c"), ("b", "c")], aggregator="sinks")
    res = Executor(timeout_s=60).run(top, "What is 2+2?")
    assert res.ok and res.answer == "2"
    reqs = server.state["requests"]
    assert len(reqs) == 3 and all(r["path"] == "/v1/chat/completions" for r in reqs)
    assert reqs[0]["auth"] == "Bearer sk-test" and reqs[0]["body"]["model"] == "m1"
    # a and b run concurrently in one level, so the arrival order of their requests is free
    systems = sorted(r["body"]["messages"][0]["content"] for r in reqs)
    assert systems == ["You are a.", "You are b.", "You are c."]
    assert all(r["body"]["messages"][0]["role"] == "system" for r in reqs)
    assert res.ledger.agents["c"].prompt_tokens == 9 and res.ledger.total_tokens == 7 + 7 + 9 + 9
    assert res.ledger.agents["a"].usage_sources == ["usage"]


def test_openai_backend_retry_timeout_and_errors(server):
    server.state["mode"] = "flaky"
    be = OpenAIChatBackend(_url(server), "m")
    res = Executor(be, retry_backoff_s=0.01).run(Topology.full(["a"]), "q")
    assert res.ok and res.run_of("a").attempts == 2
    server.state["mode"] = "slow"
    res = Executor(be, timeout_s=0.3, max_retries=1, retry_backoff_s=0.01).run(
        Topology.full(["a"]), "q"
    )
    a = res.run_of("a")
    assert a.status == "failed" and a.attempts == 2 and "timed out" in a.error
    server.state["mode"] = "unauthorized"
    res = Executor(be, retry_backoff_s=0.01).run(Topology.full(["a"]), "q")
    a = res.run_of("a")
    assert a.attempts == 1 and "HTTP 401" in a.error and "invalid api key" in a.error
    server.state["mode"] = "no_usage"
    res = Executor(be).run(Topology.full(["a"]), "q")
    assert res.ok and res.run_of("a").usage_source == "estimate" and res.ledger.total_tokens > 0
    dead = OpenAIChatBackend("http://127.0.0.1:9/v1", "m")
    res = Executor(dead, max_retries=0, timeout_s=2).run(Topology.full(["a"]), "q")
    assert res.failed == ["a"] and "cannot reach" in res.run_of("a").error
    with pytest.raises(DataValidationError, match="http"):
        OpenAIChatBackend("localhost:8000", "m")


@pytest.mark.offline_models
@pytest.mark.slow
def test_hf_local_backend_smoke():
    be = HFLocalBackend(max_new_tokens=8)
    agents = [
        AgentSpec("solver", profile="You are a careful math solver."),
        AgentSpec("checker", profile="You check answers."),
    ]
    res = Executor(be, timeout_s=60).run(Topology.chain(agents), "What is 3 + 4?")
    assert res.ok, res.failed
    for nm in ("solver", "checker"):
        t = res.ledger.agents[nm]
        assert (
            t.usage_sources == ["tokenizer"]
            and 0 < t.completion_tokens <= 8
            and t.prompt_tokens > 10
        )
    assert res.ledger.agents["checker"].prompt_tokens > res.ledger.agents["solver"].prompt_tokens
