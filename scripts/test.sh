#!/usr/bin/env bash
# Run the whole test suite (sets up the venv first when needed). Extra arguments go to pytest.
#   bash scripts/test.sh                          # the locked environment (.venv)
#   DATAPRUNE_UNLOCKED=1 bash scripts/test.sh     # newest versions pyproject allows (.venv-unlocked)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${DATAPRUNE_UNLOCKED:-0}" = 1 ]; then VENV=${VENV:-.venv-unlocked}; else VENV=${VENV:-.venv}; fi
export VENV
bash scripts/setup.sh
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
"$VENV/bin/python" -c 'import importlib.metadata as m; print("testing with " + ", ".join(f"{d} {m.version(d)}" for d in ("torch", "transformers", "sentence-transformers", "datasets", "huggingface-hub", "ray", "langchain-core", "llama-index-core")))'
exec "$VENV/bin/python" -m pytest "$@"
