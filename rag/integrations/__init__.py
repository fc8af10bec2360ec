"""Pipeline adapters (behind extras): LangChain document compressor, LlamaIndex postprocessor.

Import the submodule you need; each raises :class:`~dataprune.errors.OptionalDependencyError`
with the install command when its library is missing.
"""

from __future__ import annotations

__all__: list[str] = []
