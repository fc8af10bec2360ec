"""Calibration passes: per-feature input norms of linear layers, and block-by-block execution.

``ActivationNorms`` accumulates, for every hooked linear layer, the float32 sum over calibration
tokens of each input feature's squared activation (padding tokens excluded), i.e. ``||X_j||_2^2``.
``InputMoments`` also keeps each feature's mean and variance (merged batch by batch, never holding
more than one batch of tokens) and the number of calibration sequences, for mask refinements such
as DSnoT; optionally also the inputs' second-moment matrix ``E[x x^T]`` (in_features squared
floats per layer), for a refinement that measures the exact output error, and the same
statistics of the even- and of the odd-numbered calibration sequences apart, for a refinement
that checks each change on both halves.

``capture_block_inputs`` runs the model once with every decoder block replaced by a recorder that
returns its input unchanged, collecting the hidden states entering the first block and the keyword
arguments (attention mask, rotary embeddings, ...) that the model passes to each block. Sequential
pruners then run the blocks one at a time on those inputs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dataprune.model_pruning.structure import PrunableLayer

logger = logging.getLogger(__name__)

__all__ = [
    "ActivationNorms",
    "BlockInputs",
    "FeatureMoments",
    "InputMoments",
    "LayerHooks",
    "capture_block_inputs",
    "run_block",
]


class LayerHooks:
    """A context manager holding one forward hook per layer: ``self._hook(layer.name)``.

    Subclasses define ``_hook(name) -> callable(module, args, output)`` and may extend
    :meth:`_forget` (called on exit, after the hooks are removed).
    """

    def __init__(self, layers: Sequence[PrunableLayer]) -> None:
        self.layers = list(layers)
        self._handles: list[Any] = []

    def _hook(self, name: str) -> Callable[..., None]:
        raise NotImplementedError

    def _forget(self) -> None:
        """Drop per-pass state kept between hooks (on exit)."""

    def __enter__(self) -> LayerHooks:
        for layer in self.layers:
            self._handles.append(layer.module.register_forward_hook(self._hook(layer.name)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._forget()


class ActivationNorms(LayerHooks):
    """Forward hooks accumulating ``sum_t x_tj^2`` (float32) for each layer's input feature j.

    Set :attr:`token_mask` (bool tensor with one entry per token of the current batch, True =
    real token) before each forward pass to exclude padding.
    """

    def __init__(self, layers: Sequence[PrunableLayer]) -> None:
        super().__init__(layers)
        self.sq_norms: dict[str, Any] = {}
        self.n_tokens: dict[str, int] = {}
        self.token_mask: Any = None
        #: also pass each real token's row (sequence) in its batch to ``_accumulate``
        self.track_rows = False
        # (input tensor, token mask, its float32 real-token matrix, sequences, rows) of the
        # last hook
        self._last_input: tuple[Any, Any, Any, int, Any] | None = None

    def _forget(self) -> None:
        self._last_input = None

    def _hook(self, name: str):
        import torch

        def hook(module: Any, args: tuple[Any, ...], output: Any) -> None:
            raw = args[0] if args else None
            if raw is None:
                return
            mask = self.token_mask
            memo = self._last_input
            if memo is not None and memo[0] is raw and memo[1] is mask:
                # layers fed the same tensor (q/k/v, gate/up): the same float32 token matrix,
                # so a subclass can reuse what it derived from it (``x is`` the last one)
                self._accumulate(name, memo[2], memo[3], memo[4])
                return
            n_seq = int(raw.shape[0]) if raw.ndim == 3 else 1
            x = raw.detach().reshape(-1, raw.shape[-1])
            keep = None
            if mask is not None and mask.numel() == x.shape[0]:
                keep = mask.reshape(-1).to(x.device)
                x = x[keep]
                if mask.ndim == 2:
                    n_seq = int(mask.any(dim=1).sum())
            x = x.to(torch.float32)
            rows = self._token_rows(raw, mask, keep) if self.track_rows else None
            self._last_input = (raw, mask, x, n_seq, rows)
            self._accumulate(name, x, n_seq, rows)

        return hook

    @staticmethod
    def _token_rows(raw: Any, mask: Any, keep: Any) -> tuple[Any, int, Any]:
        """(row of every real token in its batch, rows in the batch, rows holding real tokens)."""
        import torch

        n_rows = int(raw.shape[0]) if raw.ndim == 3 else 1
        per_row = raw.shape[1] if raw.ndim == 3 else raw.shape[0]
        rows = torch.arange(n_rows, device=raw.device).repeat_interleave(per_row)
        if keep is None:
            return rows, n_rows, torch.arange(n_rows, device=raw.device)
        return rows[keep], n_rows, torch.unique(rows[keep])

    def _accumulate(self, name: str, x: Any, n_sequences: int, rows: Any = None) -> None:
        """Add one batch: ``x`` (real tokens, in_features) float32 from ``n_sequences`` rows;
        ``rows``: :meth:`_token_rows` when :attr:`track_rows` is set."""
        s = (x * x).sum(dim=0)
        if name in self.sq_norms:
            self.sq_norms[name] += s
            self.n_tokens[name] += int(x.shape[0])
        else:
            self.sq_norms[name] = s
            self.n_tokens[name] = int(x.shape[0])


@dataclass
class FeatureMoments:
    """Per-feature statistics of a layer's calibration inputs.

    Attributes
    ----------
    mean, var : torch.Tensor of shape (in_features,)
        Mean and population variance over the calibration tokens (float32).
    n_tokens : int
        Real (non-padding) tokens seen.
    n_sequences : int
        Calibration sequences those tokens came from.
    second_moment : torch.Tensor of shape (in_features, in_features), optional
        ``E[x x^T]`` over the calibration tokens (float32, uncentred), when it was asked for.
    halves : tuple of two FeatureMoments, optional
        The same statistics of the even- and of the odd-numbered calibration sequences, when
        they were asked for.
    """

    mean: Any
    var: Any
    n_tokens: int
    n_sequences: int
    second_moment: Any = None
    halves: tuple[FeatureMoments, FeatureMoments] | None = None

    @property
    def tokens_per_sequence(self) -> float:
        return self.n_tokens / max(self.n_sequences, 1)


class _RunningMoments:
    """Mean and summed squared deviations of a stream of token batches (Chan et al.'s pairwise
    update, float32), and the sequences they came from."""

    def __init__(self) -> None:
        self.mean: Any = None
        self.m2: Any = None
        self.n = 0
        self.n_sequences = 0

    def add(self, x: Any, n_sequences: int) -> None:
        n_b = int(x.shape[0])
        if n_b == 0:
            return
        mean_b = x.mean(dim=0)
        m2_b = ((x - mean_b) ** 2).sum(dim=0)
        if self.mean is None:
            self.mean, self.m2 = mean_b, m2_b
        else:
            n = self.n + n_b
            delta = mean_b - self.mean
            self.mean = self.mean + delta * (n_b / n)
            self.m2 = self.m2 + m2_b + delta * delta * (self.n * n_b / n)
        self.n += n_b
        self.n_sequences += n_sequences

    def moments(self, second_moment: Any = None) -> FeatureMoments | None:
        if self.mean is None:
            return None
        return FeatureMoments(
            mean=self.mean,
            var=self.m2 / self.n,
            n_tokens=self.n,
            n_sequences=self.n_sequences,
            second_moment=None if second_moment is None else second_moment / self.n,
        )


class InputMoments(ActivationNorms):
    """:class:`ActivationNorms` that also merges, batch by batch, each input feature's mean and
    variance (Chan et al.'s pairwise update, float32) and counts the calibration sequences.

    :meth:`pop` hands a layer's :class:`FeatureMoments` over and forgets them.

    Parameters
    ----------
    layers : sequence of PrunableLayer
        The layers whose inputs are recorded (squared norms for all of them).
    moments_for : callable, optional
        ``moments_for(layer_name) -> bool``: the layers that also get means and variances (a
        refinement's ``applies_to``); the others only get the squared norms, and :meth:`pop`
        returns ``None`` for them. Default: every layer.
    second_moment : bool, default=False
        Also sum ``x x^T`` for those layers (:attr:`FeatureMoments.second_moment`).
    halves : bool, default=False
        Also keep the statistics of the even- and of the odd-numbered calibration sequences
        apart (:attr:`FeatureMoments.halves`, with second moments when ``second_moment``;
        sequences are numbered in the order of the batches, all-padding rows included).
    """

    def __init__(
        self,
        layers: Sequence[PrunableLayer],
        moments_for: Callable[[str], bool] | None = None,
        second_moment: bool = False,
        halves: bool = False,
    ) -> None:
        super().__init__(layers)
        self._wanted = {
            lay.name for lay in self.layers if moments_for is None or moments_for(lay.name)
        }
        self._with_second = bool(second_moment)
        self.track_rows = bool(halves)
        self._running: dict[str, _RunningMoments] = {}
        self._halves: dict[str, tuple[_RunningMoments, _RunningMoments]] = {}
        self._rows_seen: dict[str, int] = {}
        self._outer: dict[str, list[Any]] = {}  # x^T x summed: all tokens[, each half]
        self._last_outer: tuple[Any, list[Any]] | None = None

    def _forget(self) -> None:
        super()._forget()
        self._last_outer = None

    def _accumulate(self, name: str, x: Any, n_sequences: int, rows: Any = None) -> None:
        super()._accumulate(name, x, n_sequences, rows)
        if name not in self._wanted:
            return
        split = self._split(name, rows) if self.track_rows else None
        if int(x.shape[0]) == 0:
            return
        if self._with_second:
            if self._last_outer is not None and self._last_outer[0] is x:
                outers = self._last_outer[1]  # gate/up (q/k/v) share their input: one product
            elif split is None:
                outers = [x.T @ x]
            else:  # each half's x^T x; all tokens': their sum
                parts = [x[sel].T @ x[sel] for sel, _ in split]
                outers = [parts[0] + parts[1], *parts]
            self._last_outer = (x, outers)
            # out of place: layers sharing an input may hold the same tensors
            acc = self._outer.get(name)
            self._outer[name] = outers if acc is None else [a + o for a, o in zip(acc, outers)]
        self._running.setdefault(name, _RunningMoments()).add(x, n_sequences)
        if split is not None:
            pair = self._halves.setdefault(name, (_RunningMoments(), _RunningMoments()))
            for half, (sel, seqs) in zip(pair, split):
                half.add(x[sel], seqs)

    def _split(self, name: str, rows: Any) -> list[tuple[Any, int]]:
        """Per half (even, odd running sequence number): which of the batch's real tokens
        belong to it, and how many of its sequences hold real tokens."""
        offset = self._rows_seen.get(name, 0)
        self._rows_seen[name] = offset + int(rows[1])
        parity = (rows[0] + offset) % 2
        seq_parity = (rows[2] + offset) % 2
        return [(parity == h, int((seq_parity == h).sum())) for h in (0, 1)]

    def pop(self, name: str) -> FeatureMoments | None:
        """The statistics of layer ``name`` (``None`` if no token reached it), then forget them."""
        running = self._running.pop(name, None)
        outers = self._outer.pop(name, None) or [None, None, None]
        pair = self._halves.pop(name, None)
        self._rows_seen.pop(name, None)
        if running is None:
            return None
        stats = running.moments(outers[0])
        if pair is not None:
            stats.halves = tuple(
                half.moments(outer) or _empty_moments(stats)
                for half, outer in zip(pair, outers[1:])
            )
        return stats


def _empty_moments(like: FeatureMoments) -> FeatureMoments:
    """A half that received no token: zero means and variances, no tokens."""
    return FeatureMoments(like.mean * 0, like.var * 0, 0, 0)


class _StopForwardError(Exception):
    """Raised after the last block has recorded its inputs (skips the LM head)."""


@dataclass
class BlockInputs:
    """Inputs of the decoder blocks, per calibration batch.

    Attributes
    ----------
    hidden : list of torch.Tensor
        Hidden states entering the current block, one (batch, seq, hidden) tensor per batch.
    args : list of list of tuple
        ``args[block][batch]``: positional arguments after the hidden states.
    kwargs : list of list of dict
        ``kwargs[block][batch]``: keyword arguments the model passed to that block.
    token_masks : list of torch.Tensor
        (batch, seq) bool, True for real tokens.
    tuple_output : bool
        Whether blocks return a tuple whose first item is the hidden states.
    """

    hidden: list[Any]
    args: list[list[tuple[Any, ...]]]
    kwargs: list[list[dict[str, Any]]]
    token_masks: list[Any]
    tuple_output: bool = False
    n_blocks: int = field(default=0)


@contextlib.contextmanager
def _patched_forwards(blocks: Sequence[Any], recorder_factory) -> Iterator[None]:
    originals = []
    try:
        for i, b in enumerate(blocks):
            originals.append(b.forward)
            b.forward = recorder_factory(i, b.forward)
        yield
    finally:
        for b, f in zip(blocks, originals):
            # restore the class method (delete the instance attribute we set)
            if "forward" in b.__dict__:
                del b.__dict__["forward"]
            if b.forward != f:  # an instance-level forward existed before (e.g. a wrapper)
                b.forward = f


def capture_block_inputs(model: Any, blocks: Sequence[Any], batches: Sequence[dict[str, Any]]):
    """Record what the model feeds every block, without running the blocks.

    Parameters
    ----------
    model : torch.nn.Module
        The full model (called with ``input_ids``, ``attention_mask``, ``use_cache=False``).
    blocks : sequence of torch.nn.Module
        The decoder blocks, in order.
    batches : sequence of dict
        Tensor batches from :meth:`CalibrationSet.batches`.

    Returns
    -------
    BlockInputs
    """
    import torch

    n = len(blocks)
    hidden: list[Any] = []
    args: list[list[tuple[Any, ...]]] = [[] for _ in range(n)]
    kwargs: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    state = {"tuple_output": None}

    def factory(i: int, original):
        def recorder(*a: Any, **kw: Any) -> Any:
            if a:
                h, rest = a[0], tuple(a[1:])
            else:
                h, rest = kw.pop("hidden_states"), ()
            if i == 0:
                hidden.append(h.detach())
                if state["tuple_output"] is None:
                    out = original(h, *rest, **kw)
                    state["tuple_output"] = isinstance(out, tuple)
            args[i].append(rest)
            kwargs[i].append(kw)
            if i == n - 1:
                raise _StopForwardError
            return (h,) if state["tuple_output"] else h

        return recorder

    device = next(model.parameters()).device
    masks = []
    with _patched_forwards(blocks, factory), torch.no_grad():
        for batch in batches:
            masks.append(batch["attention_mask"].bool())
            try:
                model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    use_cache=False,
                )
            except _StopForwardError:
                pass
            else:  # pragma: no cover - a model that never reached its last block
                raise RuntimeError("the model's forward did not run through its decoder blocks")
    if len(hidden) != len(masks) or any(len(k) != len(masks) for k in kwargs):
        raise RuntimeError(
            "could not record the inputs of every decoder block (does the model skip blocks?)"
        )
    return BlockInputs(hidden, args, kwargs, masks, bool(state["tuple_output"]), n)


def run_block(block: Any, inputs: BlockInputs, index: int, batch: int) -> Any:
    """Run decoder block ``index`` on batch ``batch`` of ``inputs``; return its hidden states."""
    out = block(inputs.hidden[batch], *inputs.args[index][batch], **inputs.kwargs[index][batch])
    return out[0] if isinstance(out, tuple) else out
