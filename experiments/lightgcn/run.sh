#!/usr/bin/env bash
# LightGCN on the real data sets, both evaluation protocols (experiments/lightgcn/README.md).
usage() {
  cat <<'EOF'
Usage: experiments/lightgcn/run.sh [--results DIR] [SHARED_DATA_DIR]

Trains graphrec's LightGCN on Amazon Baby (LATTICE split) and lfm2k (MMRec split), one
thread, and evaluates each run under the recbole and mmrec protocols.

  SHARED_DATA_DIR  folder holding amazon-baby/ and lfm2k/ (default: ../shared/data
                   beside the repository)
  --results DIR    where the datasets (DIR/data), runs (DIR/runs) and the table
                   (DIR/summary.md) go (default: experiments/lightgcn/results, git-ignored)

The Python that runs graphrec is $PYTHON (default: python3); the repository is put on
its PYTHONPATH.
EOF
}
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
res="$here/results"
shared=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --results) [ $# -ge 2 ] || { echo "run.sh: --results needs a folder" >&2; exit 1; }; res="$2"; shift 2 ;;
    --results=*) res="${1#--results=}"; shift ;;
    -*) echo "run.sh: unknown option $1: see run.sh --help" >&2; exit 1 ;;
    *) [ -z "$shared" ] || { echo "run.sh: one SHARED_DATA_DIR only (got $shared and $1)" >&2; exit 1; }
       shared="$1"; shift ;;
  esac
done
shared="${shared:-$repo/../shared/data}"
PYTHON="${PYTHON:-python3}"

# every input and the output folder now, not after an hour of training
"$PYTHON" -c 'import graphrec' 2>/dev/null || {
  echo "run.sh: $PYTHON cannot import graphrec: set PYTHON to the environment's python (PYTHON=.venv/bin/python)" >&2
  exit 1; }
for ds in amazon-baby lfm2k; do
  [ -d "$shared/$ds" ] || { echo "run.sh: $shared/$ds is not a folder: pass the folder that holds amazon-baby and lfm2k" >&2; exit 1; }
done
mkdir -p "$res/data" "$res/runs" 2>/dev/null && [ -w "$res" ] || {
  echo "run.sh: cannot write into --results $res: choose another folder" >&2; exit 1; }

g() { PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m graphrec "$@"; }

[ -d "$res/data/baby" ] || g prepare --format lattice "$shared/amazon-baby" "$res/data/baby" --unseen keep
[ -d "$res/data/lfm2k" ] || g prepare --format mmrec "$shared/lfm2k" "$res/data/lfm2k"

for ds in baby lfm2k; do
  # one thread, as the reference numbers of MMRec and RecBole were measured
  g train lightgcn --data "$res/data/$ds" --layers 2 --reg 1e-4 --threads 1 --device cpu \
    --out "$res/runs/lightgcn-$ds" --overwrite --quiet
  g evaluate "$res/runs/lightgcn-$ds" --protocol mmrec --device cpu > "$res/runs/lightgcn-$ds/mmrec.txt"
done

"$PYTHON" "$here/summarize.py" "$res/runs" > "$res/summary.md"
cat "$res/summary.md"
