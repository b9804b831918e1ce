#!/usr/bin/env bash
# LightGCN on the real data sets, both evaluation protocols.
# Usage: experiments/lightgcn/run.sh [SHARED_DATA_DIR]   (default: ../shared/data)
# Writes datasets to experiments/lightgcn/results/data/, runs to .../runs/, and a
# summary table to experiments/lightgcn/results/summary.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
shared="${1:-$repo/../shared/data}"
res="$here/results"
g() { "$repo/dev" graphrec "$@"; }
mkdir -p "$res/data" "$res/runs"

[ -d "$res/data/baby" ] || g prepare --format lattice "$shared/amazon-baby" "$res/data/baby" --unseen keep
[ -d "$res/data/lfm2k" ] || g prepare --format mmrec "$shared/lfm2k" "$res/data/lfm2k"

for ds in baby lfm2k; do
  # one thread, as the reference numbers of MMRec and RecBole were measured
  g train lightgcn --data "$res/data/$ds" --layers 2 --reg 1e-4 --threads 1 --device cpu \
    --out "$res/runs/lightgcn-$ds" --overwrite --quiet
  g evaluate "$res/runs/lightgcn-$ds" --protocol mmrec --device cpu > "$res/runs/lightgcn-$ds/mmrec.txt"
done

"$repo/dev" python "$here/summarize.py" "$res/runs" > "$res/summary.md"
cat "$res/summary.md"
