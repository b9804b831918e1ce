#!/usr/bin/env bash
# CUDA smoke check, one command on a GPU machine (issue 4: "the same tests pass on the GPU
# and an epoch on Baby is timed there"):
#
#   1. the model contract suites (every ranking and CTR model) and the real-data training
#      tests run on the GPU (GRAPHREC_TEST_DEVICE=cuda): models are built on the CPU and
#      moved, and each contract also checks loss, gradients and scores against the same
#      model on the CPU; the metric, evaluation and kNN tests run their own CUDA cases;
#   2. an epoch of LightGCN and of MM-GEF (co-interaction graph only) on Amazon Baby is
#      timed on the GPU, the two alternating in one process (epoch_time.py);
#   3. the NCCL case of torch.distributed (issue 20): LightGCN on lfm2k in a group of one
#      process per GPU, started by torchrun, and by `graphrec train --nproc N` with 2+ GPUs.
#
# Usage, from anywhere, with a python whose torch sees a GPU (the core dependencies only:
# torch, scipy, numpy, networkx, typer, tqdm, pyyaml):
#
#   PYTHON=/path/to/python GRAPHREC_SHARED_DATA=/path/to/shared/data \
#     bash experiments/benchmarks/cuda_check.sh
#
# GRAPHREC_SHARED_DATA defaults to ../shared/data beside the repository; PYTHON picks the
# interpreter (default python3), e.g. PYTHON=/path/to/venv/bin/python. Extra arguments go
# to pytest; -h or --help prints this text. Exits non-zero when a test fails, no GPU is
# visible, or the interpreter cannot import torch.
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  # this header, without the shebang and the comment marks
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  exit 0
fi
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY="${PYTHON:-python3}"
"$PY" -c 'import torch' >/dev/null 2>&1 || {
  echo "cuda_check: $PY cannot import torch: set PYTHON=/path/to/python (one with torch and graphrec's core dependencies)" >&2
  exit 1
}
export GRAPHREC_SHARED_DATA="${GRAPHREC_SHARED_DATA:-$PWD/../shared/data}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
[ -d "$GRAPHREC_SHARED_DATA/amazon-baby" ] || { echo "cuda_check: no amazon-baby under $GRAPHREC_SHARED_DATA: set GRAPHREC_SHARED_DATA" >&2; exit 2; }

"$PY" - <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("cuda_check: torch sees no CUDA device")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
EOF

echo "== tests on the GPU"
GRAPHREC_TEST_DEVICE=cuda "$PY" -m pytest -q -p no:cacheprovider \
  tests/models tests/ctr tests/train tests/metrics tests/graphs/test_knn.py tests/nn "$@"

echo "== Amazon Baby epoch on the GPU"
"$PY" experiments/benchmarks/epoch_time.py --setting baby --device cuda --epochs 20 \
  --data-root "$GRAPHREC_SHARED_DATA"

echo "== torch.distributed on NCCL: one process per GPU (docs/scaling.md)"
# lfm2k as a graphrec dataset, then LightGCN for a few epochs in a NCCL group of one
# rank per visible GPU (torchrun, as across machines), and the same command with
# graphrec's own launcher when there are two GPUs or more
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$PY" -m graphrec prepare --format mmrec "$GRAPHREC_SHARED_DATA/lfm2k" "$work/lfm2k" >/dev/null
gpus="$("$PY" -c 'import torch; print(torch.cuda.device_count())')"
"$PY" -m torch.distributed.run --standalone --nproc-per-node "$gpus" -m graphrec train lightgcn \
  --data "$work/lfm2k" --epochs 5 --device cuda --quiet --out "$work/nccl-run"
"$PY" - "$work/nccl-run/record.json" <<'PYEOF'
import json, sys
rec = json.load(open(sys.argv[1]))
assert rec["distributed"]["backend"] == "nccl", rec.get("distributed")
print(f"NCCL group of {rec['distributed']['world']}: test recall@20 {rec['test']['all']['recall@20']:.4f}, "
      f"{rec['timings']['seconds_per_epoch']:.3f} s/epoch")
PYEOF
if [ "$gpus" -ge 2 ]; then
  "$PY" -m graphrec train lightgcn --data "$work/lfm2k" --epochs 5 --device cuda --quiet --nproc "$gpus" \
    --out "$work/nproc-run"
fi
