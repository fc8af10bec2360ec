#!/usr/bin/env bash
# Refresh requirements/lock.txt: resolve the newest versions pyproject.toml allows (with every
# extra the set-up installs) against the pinned CPU torch, for CPython 3.11 on Linux x86_64.
#   bash scripts/lock.sh          # then: DATAPRUNE_UNLOCKED=1 bash scripts/test.sh is the same
#                                 # versions; run bash scripts/test.sh and commit the lock
# Torch's CPU wheels are not on PyPI: they come from DATAPRUNE_TORCH_FIND_LINKS (default: the
# PyTorch CPU wheel page; a folder of wheels works too).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_extras.sh
PYTHON=${PYTHON:-python3}
TORCH_LINKS=${DATAPRUNE_TORCH_FIND_LINKS:-https://download.pytorch.org/whl/cpu/torch/}
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$PYTHON" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements/tools.txt 2>&1 \
  | { grep -v "^WARNING: Location 'file:" || true; }
extra_args=()
for e in ${EXTRAS//,/ }; do extra_args+=(--extra "$e"); done
# torch+cpu is a constraint (so the resolution matches the installed build) but is not emitted:
# scripts/setup.sh installs it first, from requirements/torch.txt.
sed -e 's/^\(torch==[0-9.]*\)$/\1+cpu/' requirements/torch.txt > "$tools/torch-cpu.txt"
"$tools/venv/bin/uv" pip compile pyproject.toml "${extra_args[@]}" \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --find-links "$TORCH_LINKS" --constraint "$tools/torch-cpu.txt" --no-emit-package torch \
  --custom-compile-command "bash scripts/lock.sh" --quiet \
  --output-file requirements/lock.txt.tmp
mv requirements/lock.txt.tmp requirements/lock.txt
echo "lock: wrote requirements/lock.txt ($(grep -c '==' requirements/lock.txt) packages)" >&2
