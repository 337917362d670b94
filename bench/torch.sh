#!/usr/bin/env bash
# PyTorch reference for the tiny EMPO step (bench/torch_ref.py), when PyTorch is installed; skipped otherwise.
# Not a test or CI dependency. On Debian: apt-get install python3-torch libopenblas0-pthread.
#   bench/torch.sh [--threads N] [--repeats N] [--json]
set -euo pipefail
cd "$(dirname "$0")"
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import torch' >/dev/null 2>&1; then
    exec "$py" torch_ref.py "$@"
  fi
done
echo "bench/torch.sh: PyTorch is not installed (python3 -c 'import torch' fails); skipping the reference." >&2
exit 0
