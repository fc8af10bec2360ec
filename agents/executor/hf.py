"""Local Hugging Face causal LM backend (SmolLM2-135M-Instruct offline by default)."""

from __future__ import annotations

import threading
from typing import Any

from dataprune.agents.executor.backends import BackendError, ChatBackend
from dataprune.agents.executor.messages import AgentCall, Completion

__all__ = ["HFLocalBackend"]


class HFLocalBackend(ChatBackend):
    """Generate with a local causal LM; tokens are counted with its tokenizer.

    Parameters
    ----------
    model : str, path or a loaded ``PreTrainedModel``, optional
        Name/path for :func:`dataprune.models.load_causal_lm` (default SmolLM2-135M-Instruct,
        loaded lazily on the first call), or an already loaded model (then pass ``tokenizer``).
    tokenizer : optional
        Required with a loaded model.
    max_new_tokens : int, default=128
    temperature : float, default=0.0
        0 = greedy decoding (deterministic).
    dtype : str, default="bfloat16"

    Notes
    -----
    Calls are serialised with a lock (one model, one forward at a time); ``call.timeout`` becomes
    ``generate(max_time=...)``, so a slow generation is cut short rather than hanging.
    """

    name = "hf"

    def __init__(
        self,
        model: Any = None,
        *,
        tokenizer: Any = None,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        dtype: str = "bfloat16",
    ) -> None:
        self._model_arg = model
        self._model = None if model is None or isinstance(model, str) else model
        self._tokenizer = tokenizer
        if self._model is not None and tokenizer is None:
            raise ValueError("pass the tokenizer together with a loaded model")
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.dtype = dtype
        self._lock = threading.Lock()

    def _ensure_loaded(self) -> None:
        if self._model is None:
            from dataprune.models import load_causal_lm

            self._model, self._tokenizer = load_causal_lm(self._model_arg, dtype=self.dtype)

    @property
    def model_name(self) -> str:
        src = getattr(self._model, "dataprune_source", None)
        if src is not None:
            return src.name
        return str(getattr(getattr(self._model, "config", None), "name_or_path", self._model_arg))

    def describe(self) -> dict[str, str]:
        return {"backend": self.name, "model": str(self._model_arg or "SmolLM2-135M-Instruct")}

    def _prompt(self, messages: list[dict[str, str]]) -> str:
        tok = self._tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant:"

    def complete(self, call: AgentCall) -> Completion:
        import torch

        with self._lock:
            self._ensure_loaded()
            tok, model = self._tokenizer, self._model
            text = self._prompt(call.messages)
            enc = tok(text, return_tensors="pt", add_special_tokens=False)
            n_prompt = int(enc["input_ids"].shape[1])
            gen_kwargs: dict[str, Any] = {
                "max_new_tokens": self.max_new_tokens,
                "max_time": float(call.timeout),
                "pad_token_id": tok.pad_token_id
                if tok.pad_token_id is not None
                else tok.eos_token_id,
            }
            if self.temperature > 0:
                gen_kwargs.update(do_sample=True, temperature=self.temperature)
            else:
                gen_kwargs.update(do_sample=False)
            try:
                with torch.inference_mode():
                    out = model.generate(**enc.to(model.device), **gen_kwargs)
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"generation failed: {exc}", retryable=False) from None
            new = out[0, n_prompt:]
            answer = tok.decode(new, skip_special_tokens=True)
        return Completion(answer, n_prompt, int(new.shape[0]), "tokenizer", self.model_name)
