"""OpenAI-compatible ``/chat/completions`` backend over HTTP (standard library only)."""

from __future__ import annotations

import json
import math
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from dataprune.agents.executor.backends import BackendError, ChatBackend
from dataprune.agents.executor.messages import AgentCall, Completion
from dataprune.errors import DataValidationError

__all__ = ["OpenAIChatBackend"]

_RETRYABLE_STATUS = {408, 409, 425, 429}


class OpenAIChatBackend(ChatBackend):
    """Any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server, Ollama, LM Studio).

    Parameters
    ----------
    base_url : str
        Endpoint root, e.g. ``"http://127.0.0.1:8000/v1"``; requests go to
        ``{base_url}/chat/completions``.
    model : str
        Model id sent in the request.
    api_key : str, optional
        Sent as ``Authorization: Bearer ...`` when given.
    temperature : float, default=0.0
    max_tokens : int, default=256
    extra_body : mapping, optional
        Extra JSON fields for every request (``{"seed": 0}``, ``{"top_p": 0.9}``, ...).
    headers : mapping, optional
        Extra HTTP headers.
    tokenizer : object with ``encode(str)``, optional
        Counts tokens when the server omits ``usage``; without it the count is estimated as
        characters / 4 and flagged ``usage_source="estimate"``.

    Notes
    -----
    Token accounting uses the response's ``usage.prompt_tokens`` and
    ``usage.completion_tokens``. HTTP 408/409/425/429 and 5xx, connection errors and timeouts
    raise a retryable :class:`BackendError` (``Retry-After`` is passed on); other 4xx are final.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 256,
        extra_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        tokenizer: Any = None,
    ) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise DataValidationError(
                f"base_url must be an http(s) URL such as 'http://127.0.0.1:8000/v1', got {base_url!r}"
            )
        if not model:
            raise DataValidationError("an OpenAI-compatible backend needs a model id")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.extra_body = dict(extra_body or {})
        self.headers = dict(headers or {})
        self.tokenizer = tokenizer

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def describe(self) -> dict[str, str]:
        return {"backend": self.name, "base_url": self.base_url, "model": self.model}

    def _count(self, text: str) -> tuple[int, str]:
        if self.tokenizer is not None:
            return len(self.tokenizer.encode(text)), "tokenizer"
        return math.ceil(len(text) / 4), "estimate"

    def complete(self, call: AgentCall) -> Completion:
        body = {
            "model": self.model,
            "messages": call.messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens
            if call.max_new_tokens is None
            else min(self.max_tokens, int(call.max_new_tokens)),
            **self.extra_body,
        }
        headers = {"Content-Type": "application/json", **self.headers}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        req = urllib.request.Request(
            self.url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=call.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace") if exc.fp else ""
            retry_after = None
            ra = exc.headers.get("Retry-After") if exc.headers else None
            if ra:
                try:
                    retry_after = float(ra)
                except ValueError:
                    retry_after = None
            raise BackendError(
                f"HTTP {exc.code} from {self.url}: {detail.strip() or exc.reason}",
                retryable=exc.code in _RETRYABLE_STATUS or exc.code >= 500,
                retry_after=retry_after,
            ) from None
        except TimeoutError as exc:
            raise BackendError(
                f"timed out after {call.timeout:.1f} s waiting for {self.url} ({exc})"
            ) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise BackendError(
                    f"timed out after {call.timeout:.1f} s connecting to {self.url}"
                ) from None
            raise BackendError(f"cannot reach {self.url}: {reason}") from None
        except (ConnectionError, OSError) as exc:
            raise BackendError(f"connection error with {self.url}: {exc}") from None
        try:
            payload = json.loads(raw)
            text = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise BackendError(
                f"malformed response from {self.url} (expected choices[0].message.content): "
                f"{raw[:200]!r}",
                retryable=False,
            ) from None
        if text is None:
            text = ""
        usage = payload.get("usage") or {}
        pt, ct = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(pt, int) and isinstance(ct, int):
            source = "usage"
        else:
            prompt_text = "\n".join(m["content"] for m in call.messages)
            pt, source = self._count(prompt_text)
            ct, _ = self._count(text)
        return Completion(
            str(text), int(pt), int(ct), source, str(payload.get("model", self.model))
        )
