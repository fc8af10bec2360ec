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
    dtype : str, default="auto"
        As in :func:`dataprune.models.load_causal_lm` (``"auto"``: bfloat16 where it is fast,
        float32 elsewhere).

    Notes
    -----
    Calls are serialised with a lock (one model, one forward at a time); ``call.timeout`` becomes
    ``generate(max_time=...)``, so a slow generation is cut short rather than hanging.
    """

    name = "hf"
    supports_choice = True

    def __init__(
        self,
        model: Any = None,
        *,
        tokenizer: Any = None,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        dtype: str = "auto",
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

    def _encode(self, text: str) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _follow_up_text(self, messages: list[dict[str, str]], question: str) -> str:
        """The template text between the reply and the first field: end of the reply, the
        follow-up question as a user turn, and the start of the assistant's next turn."""
        tok = self._tokenizer
        reply, answer = "\x00REPLY\x00", "\x00ANSWER\x00"
        convo = [
            *messages,
            {"role": "assistant", "content": reply},
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(convo, continue_final_message=True, tokenize=False)
        else:
            text = "\n\n".join(f"{m['role']}: {m['content']}" for m in convo)
        return text.split(reply, 1)[1].split(answer, 1)[0]

    def _choice_plan(
        self, call: AgentCall
    ) -> tuple[list[int], list[list[int]], list[list[list[int]]]]:
        """Token ids of the follow-up, each field's separator+prefix, and each field's options."""
        assert call.choice is not None
        follow = self._encode(self._follow_up_text(call.messages, call.choice.question))
        heads, opts = [], []
        for i, f in enumerate(call.choice.fields):
            heads.append(self._encode((call.choice.separator if i else "") + f.prefix))
            opts.append([self._encode(o) for o in f.options])
        return follow, heads, opts

    def count_prompt_tokens(self, call: AgentCall) -> int:
        """Tokens read by ``call``: the prompt, plus (with ``call.choice``) the follow-up, each
        field's prefix and every option scored. Equals the ``prompt_tokens`` of its
        :class:`Completion`."""
        with self._lock:
            self._ensure_loaded()
            n = len(self._encode(self._prompt(call.messages)))
            if call.choice is not None:
                follow, heads, opts = self._choice_plan(call)
                n += len(follow) + sum(len(h) for h in heads)
                n += sum(len(o) for field in opts for o in field)
        return n

    def complete(self, call: AgentCall) -> Completion:
        import torch

        with self._lock:
            self._ensure_loaded()
            tok, model = self._tokenizer, self._model
            text = self._prompt(call.messages)
            enc = tok(text, return_tensors="pt", add_special_tokens=False)
            n_prompt = int(enc["input_ids"].shape[1])
            cap = self.max_new_tokens
            if call.max_new_tokens is not None:
                cap = min(cap, int(call.max_new_tokens))
            if cap < 1:
                raise BackendError(
                    f"no output tokens allowed for agent {call.agent.name!r} "
                    f"(max_new_tokens {call.max_new_tokens})",
                    retryable=False,
                )
            gen_kwargs: dict[str, Any] = {
                "max_new_tokens": cap,
                "max_time": float(call.timeout),
                "pad_token_id": tok.pad_token_id
                if tok.pad_token_id is not None
                else tok.eos_token_id,
            }
            if self.temperature > 0:
                gen_kwargs.update(do_sample=True, temperature=self.temperature)
            else:
                gen_kwargs.update(do_sample=False)
            if call.choice is not None:
                gen_kwargs.update(return_dict_in_generate=True)
            try:
                with torch.inference_mode():
                    out = model.generate(**enc.to(model.device), **gen_kwargs)
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"generation failed: {exc}", retryable=False) from None
            seq = out.sequences if call.choice is not None else out
            new = seq[0, n_prompt:]
            answer = tok.decode(new, skip_special_tokens=True)
            n_read = n_prompt
            if call.choice is not None:
                cache = getattr(out, "cache", None)
                cache = cache if cache is not None else out.past_key_values
                line, n_choice = self._choose(call, seq[0], cache)
                answer = answer.rstrip() + "\n" + line
                n_read += n_choice
        return Completion(answer, n_read, int(new.shape[0]), "tokenizer", self.model_name)

    def _choose(self, call: AgentCall, seq: Any, cache: Any) -> tuple[str, int]:
        """Answer ``call.choice`` after the generated ``seq`` (prompt + reply) by likelihood.

        Continues from the generation's key/value cache (the reply is not read again); each
        option is scored on a copy of it. Returns the chosen line and the tokens read for it
        (follow-up, prefixes, every option).
        """
        import copy
        import inspect

        import torch

        assert call.choice is not None
        model, tok = self._model, self._tokenizer
        # the cache argument was renamed from past_key_values to cache in transformers 5
        kw = (
            "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        )
        ids = seq.tolist()
        stop = {t for t in (tok.eos_token_id, tok.pad_token_id) if t is not None}
        while ids and ids[-1] in stop:
            ids.pop()
        follow, heads, opts = self._choice_plan(call)
        dev = model.device

        def feed(c: Any, tokens: list[int]) -> tuple[torch.Tensor, Any]:
            x = torch.tensor([tokens], device=dev)
            with torch.inference_mode():
                res = model(input_ids=x, use_cache=True, **{kw: c})
            new = getattr(res, "cache", None)
            new = new if new is not None else res.past_key_values
            return torch.log_softmax(res.logits[0].float(), dim=-1), new

        cached = cache.get_seq_length()
        if cached > len(ids):  # only when several end tokens were generated: read it all again
            cached, cache = 0, None
        logp, cache = feed(cache, ids[cached:] + follow)
        logp = logp[-1]
        n_read = len(follow)
        parts = []
        for field, head, options in zip(call.choice.fields, heads, opts):
            if head:
                lp_head, cache = feed(cache, head)
                logp = lp_head[-1]
                n_read += len(head)
            scores, branches = [], []
            for o in options:
                lp_o, branch = feed(copy.deepcopy(cache), o)
                score = float(logp[o[0]]) + float(sum(lp_o[i, o[i + 1]] for i in range(len(o) - 1)))
                scores.append(score)
                branches.append((lp_o[-1], branch))
                n_read += len(o)
            best = int(max(range(len(options)), key=lambda i: scores[i]))
            if field.values is not None:
                w = torch.softmax(torch.tensor(scores), dim=0).tolist()
                value = sum(wi * v for wi, v in zip(w, field.values))
                parts.append(f"{field.prefix}{value:.2f}")
            else:
                parts.append(field.prefix + field.options[best])
            logp, cache = branches[best]
        return call.choice.separator.join(p.strip() for p in parts), n_read
