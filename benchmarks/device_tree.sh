#!/usr/bin/env bash
# Fit the working tree for a call of the device tool (64 MiB in all, tree and carried paths together) before
# benchmarks/gpu_session.sh runs on a lent GPU: tracked files the GPU stages never read (the other shipped models, the
# judge, GIFs, the large test bag: ~46 MB of ~73) are moved to HOLD and back, so the tree and .devdata/data.tar.xz
# (~34 MB, scripts/recipe.sh STAGE=s20data) travel in one call. The stages read models/hma_discrete_moves and the
# tokenizer_grid* folders only.
#
#   bash benchmarks/device_tree.sh hold      # before the call; prints the bytes that will travel
#   bash benchmarks/device_tree.sh restore   # after it (git status is clean again)
set -euo pipefail
cd "$(dirname "$0")/.."
HOLD=${HOLD:-/tmp/hma_device_hold}
FILES=(models/hma_mar_small/model.safetensors models/hma_discrete_small/model.safetensors
       models/tokenizer_cont/model.safetensors models/tokenizer_moves/model.safetensors models/pusht_judge/judge.safetensors
       models/hma_mar_small/steer_tokens.gif models/hma_discrete_small/steer_tokens.gif
       models/hma_discrete_moves/steer_tokens.gif test/data/realbags/pr2_wide_stereo_bayer.bag)
case ${1:-} in
  hold)
    for f in "${FILES[@]}"; do
      [[ -f $f ]] || continue
      mkdir -p "$HOLD/$(dirname "$f")" && mv "$f" "$HOLD/$f"
    done
    tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1 || true)  # held files: du errs
    extra=$( (du -sb .devdata 2>/dev/null || echo 0) | cut -f1)
    echo "held in $HOLD; tracked files $tracked bytes + .devdata $extra = $((tracked + extra)) of 67108864"
    ;;
  restore)
    for f in "${FILES[@]}"; do
      [[ -f $HOLD/$f ]] && mv "$HOLD/$f" "$f"
    done
    git status --short -- models test/data
    ;;
  *) echo "usage: $0 hold|restore" >&2; exit 2 ;;
esac
