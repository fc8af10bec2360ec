from __future__ import annotations

import numpy as np
import pytest
import torch

from dataprune.lm_scoring import score_sft
from dataprune.qtuning import (
    QTuningConfig,
    QTuningTrainer,
    SFTCollator,
    qtuning_loss,
    sft_features,
    triage_token_scores,
)
from dataprune.scores import ifd_from_token_scores
from dataprune.sft_encoding import empty_prompt_ids

from tiny_models import CORPUS, tiny_causal_lm


@pytest.fixture()
def tiny_lm():
    """(model, tokenizer): a random 2-layer Llama with a word-level tokenizer and chat template."""
    return tiny_causal_lm(chat_template=True)


PROMPTS = CORPUS + CORPUS[::-1]
RESPONSES = [CORPUS[(i * 5 + 2) % len(CORPUS)] + " the end" for i in range(len(PROMPTS))]


def _batch(tok, n=None):
    n = len(PROMPTS) if n is None else n
    feats = sft_features(tok, PROMPTS[:n], RESPONSES[:n])
    return SFTCollator(tok.pad_token_id)(feats)


@pytest.mark.parametrize("forward", ["hidden", "full"])
@pytest.mark.parametrize(
    "cfg",
    [
        QTuningConfig(sample_ratio=0.25, token_ratio=0.5),
        QTuningConfig(sample_ratio=0.6, token_ratio=0.7, drop="low", entropy_span="all"),
        QTuningConfig(sample_ratio=0.5, token_ratio=0.5, token_budget="batch"),
    ],
)
def test_dynamic_equals_static_triage_of_the_same_batch(tiny_lm, forward, cfg):
    """Same parameters, same rules: the micro-batch triage equals the static triage of its samples."""
    model, tok = tiny_lm
    model.train()  # tiny model has no dropout; train mode as in the Trainer
    batch = _batch(tok)
    loss, _, stats = qtuning_loss(model, batch, cfg, forward=forward)
    static = triage_token_scores(score_sft(model, tok, PROMPTS, RESPONSES, batch_size=16), cfg)
    assert stats["kept"] == static.samples.kept.tolist()
    assert stats["quadrant"] == static.samples.quadrant.tolist()
    assert stats["kept_samples"] == cfg.n_keep(len(PROMPTS))
    assert stats["kept_tokens"] == static.token_counts()["kept_tokens"]
    expected = np.concatenate(
        [static_nll[m] for static_nll, m in zip(static_nll_list(model, tok), static.token_keep)]
    ).mean()
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def static_nll_list(model, tok):
    return score_sft(model, tok, PROMPTS, RESPONSES).nll


@pytest.mark.parametrize("forward", ["hidden", "full"])
def test_gradient_equals_plain_loss_on_the_kept_tokens(tiny_lm, forward):
    """The Q-Tuning gradient is the plain causal-LM gradient with pruned labels set to -100."""
    model, tok = tiny_lm
    model.train()
    batch = _batch(tok)
    cfg = QTuningConfig(sample_ratio=0.5, token_ratio=0.6)
    loss, _, stats = qtuning_loss(model, batch, cfg, forward=forward)
    loss.backward()
    g_q = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    # rebuild the kept-token labels from the static triage of the same samples
    static = triage_token_scores(score_sft(model, tok, PROMPTS, RESPONSES), cfg)
    labels = batch["labels"].clone()
    for b in range(labels.shape[0]):
        resp = torch.nonzero(labels[b] != -100, as_tuple=True)[0]
        keep = torch.from_numpy(static.token_keep[b])
        labels[b, resp[~keep]] = -100
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)
    out.loss.backward()
    for a, b in zip(g_q, (p.grad for p in model.parameters())):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert stats["kept_tokens"] == int((labels[:, 1:] != -100).sum())


@pytest.mark.parametrize("forward", ["auto", "full"])
def test_one_forward_pass_per_micro_batch(tiny_lm, forward):
    model, tok = tiny_lm
    model.train()
    calls = {"decoder": 0, "model": 0}
    h1 = model.model.register_forward_hook(
        lambda *a: calls.__setitem__("decoder", calls["decoder"] + 1)
    )
    h2 = model.register_forward_hook(lambda *a: calls.__setitem__("model", calls["model"] + 1))
    try:
        qtuning_loss(model, _batch(tok), QTuningConfig(entropy_span="all"), forward=forward)
    finally:
        h1.remove()
        h2.remove()
    assert calls["decoder"] == 1
    assert calls["model"] == (1 if forward == "full" else 0)


def test_empty_and_partial_batches(tiny_lm):
    model, tok = tiny_lm
    model.train()
    batch = _batch(tok, 4)
    batch["labels"][1:] = -100  # only the first sample has response tokens
    loss, _, stats = qtuning_loss(model, batch, QTuningConfig(sample_ratio=0.25))
    assert stats["samples_scored"] == 1 and stats["kept_samples"] == 1 and stats["kept"][0]
    loss.backward()
    batch["labels"][:] = -100
    loss, _, stats = qtuning_loss(model, batch)
    assert loss.item() == 0.0 and stats["kept_samples"] == 0
    loss.backward()  # still differentiable
    with pytest.raises(ValueError, match="labels"):
        qtuning_loss(model, {"input_ids": batch["input_ids"]})


def _args(tmp_path, **kw):
    from transformers import TrainingArguments

    base = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        max_steps=2,
        logging_steps=1,
        learning_rate=1e-2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    base.update(kw)
    return TrainingArguments(**base)


def test_trainer_with_lora_logs_counts_and_trains_only_adapters(tiny_lm, tmp_path):
    from peft import LoraConfig, get_peft_model

    model, tok = tiny_lm
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    )
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    tr = QTuningTrainer(
        model=peft_model,
        args=_args(tmp_path),
        train_dataset=sft_features(tok, PROMPTS, RESPONSES),
        data_collator=SFTCollator(tok.pad_token_id),
        qtuning_config=QTuningConfig(sample_ratio=0.25, token_ratio=0.5),
    )
    tr.train()
    assert len(tr.qtuning_history) == 2
    assert [h["kept_samples"] for h in tr.qtuning_history] == [2, 2]
    logs = [entry for entry in tr.state.log_history if "loss" in entry]
    assert logs and all(entry["qtuning/kept_samples"] == 2 for entry in logs)
    assert all(entry["qtuning/kept_tokens"] <= entry["qtuning/response_tokens"] for entry in logs)
    for n, p in peft_model.named_parameters():
        if "lora_" not in n:
            assert torch.equal(before[n], p.detach()), f"frozen weight {n} changed"
    assert any(
        not torch.equal(before[n], p.detach())
        for n, p in peft_model.named_parameters()
        if "lora_B" in n
    )


def test_trainer_full_fine_tuning_and_plain_eval(tiny_lm, tmp_path):
    model, tok = tiny_lm
    feats = sft_features(tok, PROMPTS, RESPONSES)
    before = [p.detach().clone() for p in model.parameters()]
    tr = QTuningTrainer(
        model=model,
        args=_args(
            tmp_path,
            per_device_eval_batch_size=16,
            gradient_accumulation_steps=2,
            per_device_train_batch_size=4,
        ),
        train_dataset=feats,
        eval_dataset=feats,
        data_collator=SFTCollator(tok.pad_token_id),
        qtuning_config=QTuningConfig(sample_ratio=0.5),
    )
    assert tr.loss_is_scaled_for_ga is False
    tr.train()
    assert len(tr.qtuning_history) == 4  # 2 steps x 2 accumulated micro-batches
    assert all(h["kept_samples"] == 2 and h["batch_size"] == 4 for h in tr.qtuning_history)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    # evaluation is the plain loss over every response token (no triage)
    metrics = tr.evaluate()
    model.eval()
    batch = _batch(tok)
    with torch.no_grad():
        plain = model(**batch).loss.item()
    assert metrics["eval_loss"] == pytest.approx(plain, rel=1e-4)
    assert len(tr.qtuning_history) == 4


def test_unknown_forward_option(tiny_lm, tmp_path):
    from dataprune.errors import UnknownOptionError

    model, _ = tiny_lm
    with pytest.raises(UnknownOptionError, match="auto, hidden, full"):
        QTuningTrainer(model=model, args=_args(tmp_path), qtuning_forward="fast")


@pytest.mark.parametrize("forward", ["hidden", "full"])
def test_dynamic_abrupt_end_rule_equals_static(tiny_lm, forward):
    """abrupt_end leaves out the same samples in one micro-batch as static triage of it."""
    model, tok = tiny_lm
    model.config.eos_token_id = tok.eos_token_id
    model.train()
    scores = score_sft(model, tok, PROMPTS, RESPONSES, batch_size=16)
    end = scores.end_nll(tok.eos_token_id)
    assert not np.isnan(end).any()
    margin = float(np.max(end) - np.median(end)) / 2  # flags the upper part of the spread
    cfg = QTuningConfig(sample_ratio=0.5, abrupt_end=margin)
    static = triage_token_scores(scores, cfg, end_token_id=tok.eos_token_id)
    flagged = end > np.median(end) + margin
    assert flagged.any() and not static.samples.kept[flagged].any()
    _, _, stats = qtuning_loss(model, _batch(tok), cfg, forward=forward)
    assert stats["kept"] == static.samples.kept.tolist()
    assert stats["abrupt_end"] == int(flagged.sum())
    # the end token defaults to the scoring tokenizer's EOS
    inferred = triage_token_scores(scores, cfg)
    assert np.array_equal(inferred.samples.kept, static.samples.kept)
    # no end token known: the rule is skipped (plain triage), not an error
    model.config.eos_token_id = None
    model.generation_config.eos_token_id = None
    _, _, stats = qtuning_loss(model, _batch(tok), cfg, forward=forward)
    plain = triage_token_scores(scores, QTuningConfig(sample_ratio=0.5, abrupt_end=None))
    assert stats["abrupt_end"] == 0 and stats["kept"] == plain.samples.kept.tolist()


@pytest.mark.parametrize("forward", ["hidden", "full"])
def test_dynamic_ifd_rule_equals_static(tiny_lm, forward):
    """max_ifd leaves out the same samples of a micro-batch as static triage with IFD."""
    model, tok = tiny_lm
    model.train()
    cond = score_sft(model, tok, PROMPTS, RESPONSES, batch_size=16)
    uncond = score_sft(model, tok, [""] * len(PROMPTS), RESPONSES, batch_size=16)
    ifd = ifd_from_token_scores(cond, uncond).ifd
    # a threshold in the widest gap of the middle half: no sample sits on it
    s = np.sort(ifd)
    lo, hi = len(s) // 4, 3 * len(s) // 4
    j = lo + int(np.argmax(np.diff(s[lo:hi])))
    cfg = QTuningConfig(sample_ratio=0.25, abrupt_end=None, max_ifd=float((s[j] + s[j + 1]) / 2))
    static = triage_token_scores(cond, cfg, ifd=ifd)
    flagged = ifd >= cfg.max_ifd
    assert flagged.any() and not static.samples.kept[flagged].any()
    prefix = empty_prompt_ids(tok)
    assert prefix  # the chat template renders an empty user turn
    _, _, stats = qtuning_loss(model, _batch(tok), cfg, forward=forward, empty_prompt_ids=prefix)
    assert stats["kept"] == static.samples.kept.tolist()
    assert stats["misaligned"] == int(flagged.sum())
    # without the empty prompt the rule is skipped, not an error
    _, _, stats = qtuning_loss(model, _batch(tok), cfg, forward=forward)
    plain = triage_token_scores(
        cond, QTuningConfig(sample_ratio=0.25, abrupt_end=None, max_ifd=None)
    )
    assert stats["misaligned"] == 0 and stats["kept"] == plain.samples.kept.tolist()


def test_ifd_pass_has_no_gradient_and_one_decoder_call(tiny_lm):
    model, tok = tiny_lm
    model.train()
    calls = []
    h = model.model.register_forward_hook(lambda *a: calls.append(torch.is_grad_enabled()))
    try:
        loss, _, _ = qtuning_loss(
            model, _batch(tok), QTuningConfig(max_ifd=1.0), empty_prompt_ids=empty_prompt_ids(tok)
        )
    finally:
        h.remove()
    assert calls == [True, False]  # the training pass, then the response-only pass
    loss.backward()


def test_a_micro_batch_of_noise_only_keeps_k_and_trains(tiny_lm):
    """Every sample flagged (here: an IFD threshold no pair is under): K are still kept, in the
    static fallback order, instead of an error in the middle of training."""
    model, tok = tiny_lm
    model.train()
    cfg = QTuningConfig(sample_ratio=0.25, abrupt_end=None, max_ifd=1e-9)
    loss, _, stats = qtuning_loss(model, _batch(tok), cfg, empty_prompt_ids=empty_prompt_ids(tok))
    k = cfg.n_keep(len(PROMPTS))
    assert stats["misaligned"] == len(PROMPTS) - k and stats["kept_samples"] == k
    assert stats["kept"] == [True] * k + [False] * (len(PROMPTS) - k)  # index order
    assert torch.isfinite(loss)
    loss.backward()
    # static triage of a whole dataset of noise stays an error
    from dataprune.errors import DataValidationError
    from dataprune.qtuning import triage_samples

    with pytest.raises(DataValidationError, match="every sample is excluded or flagged"):
        triage_samples(np.ones(4), np.ones(4), cfg, noise=np.ones(4, dtype=bool))


@pytest.mark.parametrize("kind", ["list", "datasets"])
def test_trainer_deduplicates_the_training_set_once(tiny_lm, tmp_path, kind):
    model, tok = tiny_lm
    feats = sft_features(tok, PROMPTS, RESPONSES)
    rows = [*feats, feats[0], feats[3]]  # two exact copies at the end
    if kind == "datasets":
        datasets = pytest.importorskip("datasets")
        rows = datasets.Dataset.from_list(rows)
    tr = QTuningTrainer(
        model=model,
        args=_args(tmp_path),
        train_dataset=rows,
        data_collator=SFTCollator(tok.pad_token_id),
        processing_class=tok,
        qtuning_config=QTuningConfig(sample_ratio=0.5),
    )
    dup = tr.qtuning_duplicate_of
    assert dup[-2:].tolist() == [0, 3] and (dup[: len(feats)] == -1).all()
    assert len(tr.train_dataset) == len(feats)
    assert tr.qtuning_empty_prompt_ids == empty_prompt_ids(tok)
    tr.train()
    assert [h["kept_samples"] for h in tr.qtuning_history] == [4, 4]
    off = QTuningTrainer(
        model=model,
        args=_args(tmp_path),
        train_dataset=rows,
        data_collator=SFTCollator(tok.pad_token_id),
        qtuning_config=QTuningConfig(dedup="none", max_ifd=None),
    )
    assert off.qtuning_duplicate_of is None and len(off.train_dataset) == len(feats) + 2
    assert off.qtuning_empty_prompt_ids is None
