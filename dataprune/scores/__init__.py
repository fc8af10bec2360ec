"""Per-record difficulty and label-quality scores.

* :func:`el2n_scores`, :func:`grand_scores` — closed forms from probabilities (and features);
* :func:`proxy_scores` — EL2N/GraNd averaged over seeded proxy heads trained on embeddings
  (labelled data); :func:`cross_val_probs` — out-of-fold probabilities;
* :func:`lm_scores` / :func:`lm_el2n_scores` — per-response-token EL2N/GraNd from a causal LM
  (unlabelled SFT data);
* :func:`ifd_scores` / :func:`ifd_ratio` — instruction-following difficulty,
  PPL(response | prompt) / PPL(response), from a causal LM (unlabelled SFT data);
* :func:`find_label_issues`, :func:`label_quality_scores` — confident learning.

Directions: EL2N and GraNd are "higher = harder"; label quality is "higher = keep"; IFD near or
above 1 means the prompt does not help predict the response (lower = the prompt explains it).
"""

from __future__ import annotations

from dataprune.lazy import lazy_exports

__all__ = [
    "IFDScores",
    "LMScores",
    "ProxyConfig",
    "ProxyScores",
    "confident_joint",
    "cross_val_probs",
    "el2n_from_token_stats",
    "el2n_scores",
    "find_label_issues",
    "grand_scores",
    "ifd_from_token_scores",
    "ifd_ratio",
    "ifd_scores",
    "label_quality_scores",
    "lm_el2n_scores",
    "lm_scores",
    "proxy_scores",
]

_LAZY = {
    "el2n_scores": "dataprune.scores.el2n",
    "el2n_from_token_stats": "dataprune.scores.el2n",
    "grand_scores": "dataprune.scores.grand",
    "ProxyConfig": "dataprune.scores.proxy",
    "ProxyScores": "dataprune.scores.proxy",
    "proxy_scores": "dataprune.scores.proxy",
    "cross_val_probs": "dataprune.scores.proxy",
    "LMScores": "dataprune.scores.lm",
    "lm_scores": "dataprune.scores.lm",
    "lm_el2n_scores": "dataprune.scores.lm",
    "IFDScores": "dataprune.scores.ifd",
    "ifd_scores": "dataprune.scores.ifd",
    "ifd_ratio": "dataprune.scores.ifd",
    "ifd_from_token_scores": "dataprune.scores.ifd",
    "confident_joint": "dataprune.scores.label_issues",
    "find_label_issues": "dataprune.scores.label_issues",
    "label_quality_scores": "dataprune.scores.label_issues",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
