#!/usr/bin/env bash
# The default recipe behind models/hma_discrete_small, end to end on 2 CPU cores
# (figures in its MODEL_CARD.md). Datasets and runs are regenerated, never committed.
#   bash scripts/recipe.sh            # everything
#   STAGE=finetune bash scripts/recipe.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
STAGE=${STAGE:-all}
PRE=pusht,reacher,cheetah          # pretraining embodiments; manipulator is held out
MODEL="--d-model 192 --layers 4 --heads 4 --batch-size 8 --save-every 250 --eval-every 700"

if [[ $STAGE == all || $STAGE == data ]]; then
  hma gen-data --out data/sim --overwrite                                   # ~5 min
fi
if [[ $STAGE == all || $STAGE == tokenizer ]]; then
  hma train-tokenizer --data data/sim --out runs/tokenizer --minutes 18     # all 4 embodiments' frames
fi
if [[ $STAGE == all || $STAGE == pretrain ]]; then
  # the action-conditioned model and the passive baseline, same budget, one core each
  OMP_NUM_THREADS=1 hma train --data data/sim --embodiments $PRE --tokenizer runs/tokenizer \
      --out runs/hma_main --steps 2800 --threads 1 $MODEL &
  OMP_NUM_THREADS=1 hma train --data data/sim --embodiments $PRE --tokenizer runs/tokenizer \
      --out runs/hma_passive --objective passive --steps 2800 --threads 1 $MODEL &
  wait
fi
if [[ $STAGE == all || $STAGE == finetune ]]; then
  # held-out embodiment: new stem+head on the frozen trunk, then full finetuning,
  # against the same number of steps from scratch (same tokenizer)
  FT="--d-model 192 --layers 4 --heads 4 --batch-size 8 --eval-every 0 --threads 1 --warmup 40"
  OMP_NUM_THREADS=1 hma train --data data/sim --embodiments manipulator --tokenizer runs/hma_main \
      --out runs/ft_scratch --steps 400 $FT &
  OMP_NUM_THREADS=1 hma train --data data/sim --embodiments manipulator --init runs/hma_main \
      --freeze-trunk --out runs/ft_frozen --steps 200 --lr 1e-3 $FT &
  wait
  OMP_NUM_THREADS=1 hma train --data data/sim --embodiments manipulator --init runs/ft_frozen \
      --out runs/ft_full --steps 200 --lr 3e-4 $FT
fi
if [[ $STAGE == all || $STAGE == eval ]]; then
  hma eval --ckpt runs/hma_main --data data/sim --embodiments $PRE --passive runs/hma_passive --out runs/eval_main
  for r in ft_scratch ft_frozen ft_full; do
    hma eval --ckpt runs/$r --data data/sim --embodiments manipulator --out runs/eval_$r
  done
  hma bench --ckpt runs/hma_main --json runs/bench.json
fi
