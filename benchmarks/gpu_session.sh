#!/usr/bin/env bash
# One lent-GPU session's work in one call (the device tool's machine: python3 with torch, no venv).
# 1. `hma bench` on CUDA: the paper's HMA-Base geometry (32 layers, d=256, 16 heads, 16x16 tokens,
#    256 px) at batch 1 in bf16 and fp32, and the shipped checkpoint at batch 1 and 16;
# 2. training throughput at the shipped size (batch 8, one process);
# 3. three continuations of models/hma_discrete_moves trained side by side on the one GPU for
#    TRAIN_MIN minutes (see scripts/recipe.sh STAGE=gpu):
#      big   - data/sim + data/big/pusht (4x more PushT episodes), batch 32
#      ctrl  - data/sim only, otherwise the same (does more data help, or only more steps?)
#      corr  - as big, with 10% of the visible tokens corrupted in training (rollout robustness)
# GPU_STAGE=2 instead: two continuations of INIT (the stage-1 winner, runs/gpu_big) side by side for
# TRAIN_MIN minutes, with and without data/pose/pusht (pose-pusher demonstrations, contact-rich):
#      pose  - data/sim + data/big/pusht + data/pose/pusht;  more - data/sim + data/big/pusht
# GPU_STAGE=graphs: benchmarks/gpu_graphs.py (imagination speed with CUDA graphs and fused elementwise
# steps, HMA-Base and the shipped size), then the shipped dynamics and its tokenizer's decoder (alone)
# trained side by side for TRAIN_MIN minutes (runs/gpu_dyn5, runs/gpu_dec5).
# GPU_STAGE=local: a patch-local tokenizer (tokL) and two continuations of version 6's dynamics side by side,
# on the conv code (ctrl7) and, once tokL is trained, on the local code (local7): scripts/recipe.sh STAGE=gpu7.
# GPU_STAGE=mar: MAR dynamics on the continuous tokenizer models/tokenizer_cont, two arms side by side for
# TRAIN_MIN minutes: marA (MAR_INIT's weights, hma_mar_small version 1 in session 15: the control) and marB (the same, with the trunk, stems
# and slot embeddings of hma_discrete_moves, `--trunk`): scripts/recipe.sh STAGE=gpu15.
# GPU_STAGE=reach: version 7 and its passive control trained on with random-torque reacher episodes added (the arm
# always moves there): scripts/recipe.sh STAGE=gpu16. With cheetah_big in .devdata (STAGE=gpu17data) it trains on it
# too; PASSIVE=none trains the first arm alone; MIX sets the mixture; DEEP=N adds an arm grown to N blocks (runs/gpu_reachD:
# `--layers N`, the new blocks identities at first) beside it, the capacity question of the card's session 15.
# GPU_STAGE=closed: version 7 trained on side by side with (clA) the learned simulator's closed-loop
# commands replayed in gym-pusht (data/closed: hma gen-closed-loop) and without (clC), the rest of the data and settings the same:
# scripts/recipe.sh STAGE=s20data s20.
# GPU_STAGE=state: version 8 trained on side by side with (stA) and without (stC) the state head's loss
# (`--state-weight ${STATE_W:-1}`: where the recorded state -- PushT's T -- went in each slot), version 8's data and
# settings otherwise (the data.tar.xz of STAGE=s20data): scripts/recipe.sh STAGE=s22 is its CPU-scale run.
# GPU_STAGE=smooth: a code smooth in pose at GPU scale: version 8's tokenizer continued with the one-pixel-shift
# penalty (tokS, `--shift-weight ${SHIFT_W:-0.2}`) and without (tokC) for TOK_MIN minutes side by side, then version 8's
# dynamics continued on each code (dynS, dynC) for the rest of TRAIN_MIN, side by side; the data.tar.xz of STAGE=s20data.
# scripts/recipe.sh STAGE=s23 is its CPU-scale run.
# GPU_STAGE=grid16: 4-px tokens -- version 8's dynamics continued for TRAIN_MIN minutes side by side on a 16x16-token code
# (models/tokenizer_grid16, g16; the slot's position embeddings resampled to the grid) and, as the control, on an 8x8 code
# made by the same CPU recipe and steps (models/tokenizer_grid8, c8); the data.tar.xz of STAGE=s20data; scripts/recipe.sh
# STAGE=s25gpu. Each arm gets half the GPU; g16's tokens cost ~4x c8's, so equal minutes, not equal steps.
# GPU_STAGE=adv: a decoder that must commit: ADV_INIT's decoder (default version 8) trained on its own imagined tokens
# (IMW rollouts per embodiment, on the GPU) with the PatchGAN loss (decA, `--adv-weight ${ADV_W:-0.5}`) and without
# (decI) for TRAIN_MIN minutes side by side, each exported into ADV_INIT (vA, vI); the data.tar.xz of STAGE=s20data.
# scripts/recipe.sh STAGE=s24 is its CPU-scale run.
# The tree and .devdata must fit the device tool's 64 MiB: `bash benchmarks/device_tree.sh hold` before the call moves
# the tracked files no stage reads out of the tree (`restore` after).
# Datasets travel xz-compressed in .devdata/ (frames.u8.xz; scripts/recipe.sh STAGE=gpu makes it).
# Results: $OUT/results.tgz (bench JSON, logs, configs) and $OUT/<run>.safetensors (fp16).
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-out/gpu}
TRAIN_MIN=${TRAIN_MIN:-5.5}
DEV=${DEV:-cuda}      # DEV=cpu BENCH=0 TRAIN_MIN=0.2: a dry run of the script on any machine
BENCH=${BENCH:-1}
TPUT_STEPS=${TPUT_STEPS:-200}; CAL_STEPS=${CAL_STEPS:-120}
mkdir -p "$OUT/res"
hma() { python3 -m hma_ros.cli.main "$@"; }
send_back() {  # send_back RUN...: each runs/gpu_RUN's fp16 checkpoint in 15 MB parts (16 MiB a file at most), its
  # config and train log in results.tgz; then the stage ends
  local R
  for R in "$@"; do
    [[ -f runs/gpu_$R/model.safetensors ]] || { echo "no runs/gpu_$R"; continue; }
    cp runs/gpu_$R/config.yaml "$OUT/res/gpu_$R.config.yaml"; cp runs/gpu_$R/train_log.csv "$OUT/res/gpu_$R.train_log.csv"
    split -b 15M runs/gpu_$R/model.safetensors "$OUT/gpu_$R.safetensors.part_"
  done
  tar czf "$OUT/results.tgz" -C "$OUT" res && rm -rf "$OUT/res"
  echo "${GPU_STAGE:-1} stage done at $(( $(date +%s) - t0 )) s"
  exit 0
}
unpack_data() {  # the datasets of one .devdata/data.tar.xz (scripts/recipe.sh STAGE=s20data makes it) into .devdata/data
  python3 -c "import tarfile; tarfile.open('.devdata/data.tar.xz').extractall('.devdata')" && echo "data unpacked"
}
# version 8's training sets, as the stages after unpack_data read them
V8_DATA=".devdata/data/big/pusht .devdata/data/pose/pusht .devdata/data/reacher_rand/reacher .devdata/data/cheetah_big/cheetah
  .devdata/data/closed/pusht .devdata/data/closed1/pusht"
rm -rf runs/gpu_big runs/gpu_ctrl runs/gpu_corr runs/gpu_pose runs/gpu_more /tmp/tput8 /tmp/cal_big /tmp/cal_ctrl /tmp/cal_corr
t0=$(date +%s)
[[ $DEV == cuda ]] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/res/gpu.txt"
python3 - <<'EOF'
import lzma, pathlib, shutil
for f in sorted(pathlib.Path(".devdata").rglob("frames.u8.xz")):
    with lzma.open(f) as src, open(f.with_suffix(""), "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 24)
    f.unlink()
print("data unpacked")
EOF

if [[ ${GPU_STAGE:-1} == local ]]; then
  # Does a local token code help the dynamics? (scripts/recipe.sh STAGE=gpu7). Data: one tar.xz.
  #   tokL  - tokenizer_moves v6 continued with a patch-local encoder (--encoder local), TOK_MIN minutes
  #   ctrl  - version 6's dynamics on tokenizer_moves v6 (the conv code), the whole TRAIN_MIN
  #   local - version 6's dynamics on tokL's code, from when tokL is done to the end
  # PASSIVE_ONLY=1 instead: ctrl7's passive control alone (runs/gpu_passive7: --objective passive)
  unpack_data
  D=".devdata/data/sim/pusht .devdata/data/sim/reacher .devdata/data/sim/cheetah .devdata/data/big/pusht .devdata/data/pose/pusht"
  D6="$D .devdata/data/reacher_big/reacher .devdata/data/cheetah_big/cheetah"
  TOK_MIN=${TOK_MIN:-2.5}
  DYN="--data $D6 --embodiments pusht,reacher,cheetah --init models/hma_discrete_moves --motion-weight 5 \
       --mixture pusht=0.7,reacher=0.15,cheetah=0.15 --batch-size 32 --lr 3e-4 --warmup 50 --save-every 100000 \
       --eval-every 100000 --device $DEV --fp16"
  rm -rf runs/gpu_tokL runs/gpu_ctrl7 runs/gpu_local7 runs/gpu_passive7
  if [[ ${PASSIVE_ONLY:-0} == 1 ]]; then  # ctrl7's passive control: the same command, never shown the actions
    hma train $DYN --tokenizer models/tokenizer_moves --objective passive --steps "${STEPS_CTRL:-5000}" \
      --minutes "$TRAIN_MIN" --out runs/gpu_passive7 > "$OUT/res/train_passive7.log" 2>&1
  else
    hma train-tokenizer --data $D --init models/tokenizer_moves --encoder local --motion-weight 20 --lr 1e-3 \
      --batch-size 64 --minutes "$TOK_MIN" --device $DEV --out runs/gpu_tokL > "$OUT/res/train_tokL.log" 2>&1 &
    TOK_PID=$!
    hma train $DYN --tokenizer models/tokenizer_moves --steps "${STEPS_CTRL:-5000}" --minutes "$TRAIN_MIN" \
      --out runs/gpu_ctrl7 > "$OUT/res/train_ctrl7.log" 2>&1 &
    wait $TOK_PID
    echo "tokenizer done at $(( $(date +%s) - t0 )) s"
    LEFT=$(python3 -c "print(round(max(0.2, $TRAIN_MIN - ($(date +%s) - $t0) / 60 + 0.3), 2))")
    hma train $DYN --tokenizer runs/gpu_tokL --steps "${STEPS_LOCAL:-3000}" --minutes "$LEFT" \
      --out runs/gpu_local7 > "$OUT/res/train_local7.log" 2>&1
    wait
  fi
  for R in tokL ctrl7 local7 passive7; do
    [[ -f runs/gpu_$R/model.safetensors ]] || { echo "no runs/gpu_$R"; continue; }
    mkdir -p "/tmp/ship/gpu_$R"
    if [[ $R == tokL ]]; then cp runs/gpu_$R/{model.safetensors,config.yaml} "/tmp/ship/gpu_$R/"
    else hma export --ckpt "runs/gpu_$R" --out "/tmp/ship/gpu_$R" > /dev/null; fi
    cp runs/gpu_$R/train_log.csv "/tmp/ship/gpu_$R/" 2>/dev/null
    tar czf "$OUT/gpu_$R.tgz" -C /tmp/ship "gpu_$R"
  done
  tar czf "$OUT/results.tgz" -C "$OUT" res && rm -rf "$OUT/res"
  echo "local stage done at $(( $(date +%s) - t0 )) s"
  exit 0
fi

if [[ ${GPU_STAGE:-1} == reach ]]; then
  # The reacher's arm (hma_discrete_moves' card, session 16): the frames and torques determine its next pose, the
  # model has not learned the mapping. Version 7 and its passive control (runs/g7/gpu_passive7, carried) trained on
  # side by side with the random-torque reacher episodes added (data/reacher_rand: the arm always moves) and the
  # reacher's share raised; the passive arm is the control the "above passive" target needs.
  # Data: one tar.xz (scripts/recipe.sh STAGE=gpu16data).
  unpack_data
  D=".devdata/data/sim/pusht .devdata/data/sim/reacher .devdata/data/sim/cheetah .devdata/data/big/pusht \
     .devdata/data/pose/pusht .devdata/data/reacher_big/reacher .devdata/data/reacher_rand/reacher"
  [[ -d .devdata/data/cheetah_big/cheetah ]] && D="$D .devdata/data/cheetah_big/cheetah"  # gpu17data carries it
  RE="--data $D --embodiments pusht,reacher,cheetah --motion-weight 5 --mixture ${MIX:-pusht=0.55,reacher=0.3,cheetah=0.15} \
      --batch-size 32 --lr 1.5e-4 --warmup 50 --steps ${STEPS:-30000} --minutes $TRAIN_MIN --save-every 100000 \
      --eval-every 100000 --token-cache off --device $DEV --fp16"
  rm -rf runs/gpu_reach runs/gpu_reachP runs/gpu_reachD
  hma train $RE --init models/hma_discrete_moves --out runs/gpu_reach > "$OUT/res/train_reach.log" 2>&1 &
  [[ ${PASSIVE:-} != none ]] &&  # PASSIVE=none: the first arm alone (the passive checkpoint's 11 MB left behind)
    hma train $RE --init ${PASSIVE:-runs/g7/gpu_passive7} --out runs/gpu_reachP > "$OUT/res/train_reachP.log" 2>&1 &
  [[ -n ${DEEP:-} ]] &&  # DEEP=N: the same continuation grown to N blocks
    hma train $RE --init models/hma_discrete_moves --layers "$DEEP" --out runs/gpu_reachD > "$OUT/res/train_reachD.log" 2>&1 &
  wait
  send_back reach reachP reachD
fi

if [[ ${GPU_STAGE:-1} == closed ]]; then
  # Does data from the model's own closed loop teach the contact it gets wrong? Two continuations of version 7 for
  # TRAIN_MIN minutes side by side on the one GPU, the same command but for one dataset: clA adds data/closed/pusht
  # and data/closed1/pusht when carried (the closed-loop commands of three frame policies in version 7 from 100 starts
  # each, replayed in gym-pusht); clC does not. With data/closed2 carried, the second round (DAgger's next iteration):
  # INIT=runs/g20/gpu_clA trained on with (cl2A) and without (cl2C) data/closed2, clA's own closed loop replayed.
  unpack_data
  D=".devdata/data/big/pusht .devdata/data/pose/pusht .devdata/data/reacher_rand/reacher .devdata/data/cheetah_big/cheetah"
  CL="--embodiments pusht,reacher,cheetah --motion-weight 5 --mixture ${MIX:-pusht=0.65,reacher=0.2,cheetah=0.15} \
      --batch-size 32 --lr 1.5e-4 --warmup 50 --steps ${STEPS:-30000} --minutes $TRAIN_MIN --save-every 100000 \
      --eval-every 100000 --token-cache off --device $DEV --fp16 --init ${INIT:-models/hma_discrete_moves}"
  CLD=".devdata/data/closed/pusht"; [[ -d .devdata/data/closed1/pusht ]] && CLD="$CLD .devdata/data/closed1/pusht"
  if [[ -d .devdata/data/closed2/pusht ]]; then  # the second round: INIT = the first round's clA, its own closed loop
    A_DATA="$D $CLD .devdata/data/closed2/pusht"; C_DATA="$D $CLD"; NA=cl2A; NC=cl2C  # (data/closed2) added or not
  else
    A_DATA="$D $CLD"; C_DATA="$D"; NA=clA; NC=clC
  fi
  rm -rf runs/gpu_$NA runs/gpu_$NC
  hma train --data $A_DATA $CL --out runs/gpu_$NA > "$OUT/res/train_$NA.log" 2>&1 &
  hma train --data $C_DATA $CL --out runs/gpu_$NC > "$OUT/res/train_$NC.log" 2>&1 &
  wait
  send_back $NA $NC
fi

if [[ ${GPU_STAGE:-1} == state ]]; then
  # Does a dense target for where the pushed T goes teach the contact? stA: --state-weight, stC: the control.
  unpack_data
  D="$V8_DATA"
  ST="--data $D --embodiments pusht,reacher,cheetah --motion-weight 5 --mixture ${MIX:-pusht=0.65,reacher=0.2,cheetah=0.15} \
      --batch-size 32 --lr 1.5e-4 --warmup 50 --steps ${STEPS:-30000} --minutes $TRAIN_MIN --save-every 100000 \
      --eval-every 100000 --token-cache off --device $DEV --fp16 --init ${INIT:-models/hma_discrete_moves}"
  rm -rf runs/gpu_stA runs/gpu_stC
  hma train $ST --state-weight ${STATE_W:-1} --out runs/gpu_stA > "$OUT/res/train_stA.log" 2>&1 &
  hma train $ST --out runs/gpu_stC > "$OUT/res/train_stC.log" 2>&1 &
  wait
  send_back stA stC
fi

if [[ ${GPU_STAGE:-1} == smooth ]]; then
  # Does a code smooth in pose let the dynamics draw a pushed T? Both codes are new to the dynamics: dynC is the control.
  unpack_data
  D="$V8_DATA"
  TOK_MIN=${TOK_MIN:-2.5}
  rm -rf runs/gpu_tokS runs/gpu_tokC runs/gpu_dynS runs/gpu_dynC
  for A in tokS:${SHIFT_W:-0.2} tokC:0; do
    hma train-tokenizer --data $D --init models/hma_discrete_moves --shift-weight ${A##*:} --motion-weight 20 --lr 3e-4 \
      --batch-size 64 --minutes "$TOK_MIN" --device $DEV --out runs/gpu_${A%%:*} > "$OUT/res/train_${A%%:*}.log" 2>&1 &
  done
  wait
  echo "tokenizers done at $(( $(date +%s) - t0 )) s"
  LEFT=$(python3 -c "print(round(max(0.2, $TRAIN_MIN - ($(date +%s) - $t0) / 60 + 0.3), 2))")
  DYN="--data $D --embodiments pusht,reacher,cheetah --init models/hma_discrete_moves --motion-weight 5 \
       --mixture ${MIX:-pusht=0.65,reacher=0.2,cheetah=0.15} --batch-size 32 --lr 3e-4 --warmup 50 --steps ${STEPS:-30000} \
       --minutes $LEFT --save-every 100000 --eval-every 100000 --token-cache off --device $DEV --fp16"
  for A in S C; do
    hma train $DYN --tokenizer runs/gpu_tok$A --out runs/gpu_dyn$A > "$OUT/res/train_dyn$A.log" 2>&1 &
  done
  wait
  send_back dynS dynC
fi

if [[ ${GPU_STAGE:-1} == grid16 ]]; then
  # 4-px tokens: version 8's dynamics continued side by side on two codes new to it, made by the same CPU recipe and
  # steps, differing in the grid: models/tokenizer_grid16 (16x16 tokens, g16) and models/tokenizer_grid8 (8x8, c8:
  # the control). `hma train --init --tokenizer` resamples the slot's position embeddings to the new grid.
  unpack_data
  D="$V8_DATA"
  LEFT=$(python3 -c "print(round(max(0.2, $TRAIN_MIN - ($(date +%s) - $t0) / 60), 2))")
  rm -rf runs/gpu_g16 runs/gpu_c8
  for A in g16:grid16 c8:grid8; do
    hma train --data $D --embodiments pusht,reacher,cheetah --init ${INIT:-models/hma_discrete_moves} \
      --tokenizer models/tokenizer_${A##*:} --motion-weight 5 --mixture ${MIX:-pusht=0.65,reacher=0.2,cheetah=0.15} \
      --batch-size ${BATCH:-32} --lr ${LR:-3e-4} --warmup 50 --steps ${STEPS:-30000} --minutes $LEFT --save-every 100000 \
      --eval-every 100000 --token-cache off --device $DEV --fp16 --out runs/gpu_${A%%:*} > "$OUT/res/train_${A%%:*}.log" 2>&1 &
  done
  wait
  send_back g16 c8
fi

if [[ ${GPU_STAGE:-1} == adv ]]; then
  unpack_data
  D=".devdata/data/big/pusht .devdata/data/pose/pusht .devdata/data/closed .devdata/data/reacher_rand/reacher \
     .devdata/data/cheetah_big/cheetah"
  INIT=${ADV_INIT:-models/hma_discrete_moves}
  rm -rf runs/gpu_decA runs/gpu_decI runs/gpu_vA runs/gpu_vI
  for A in A:${ADV_W:-0.5} I:0; do
    hma train-tokenizer --data $D --init $INIT --decoder-only --imagined $INIT --imagined-windows ${IMW:-600} \
      --motion-weight 20 --lr 3e-4 --adv-weight ${A##*:} --batch-size 32 --minutes "$TRAIN_MIN" --device $DEV \
      --out runs/gpu_dec${A%%:*} > "$OUT/res/train_dec${A%%:*}.log" 2>&1 &
  done
  wait
  for A in A I; do
    hma export --ckpt $INIT --decoder runs/gpu_dec$A --out runs/gpu_v$A > /dev/null && cp runs/gpu_dec$A/train_log.csv runs/gpu_v$A/
  done
  send_back vA vI
fi

if [[ ${GPU_STAGE:-1} == mar || ${GPU_STAGE:-1} == mar2 ]]; then
  # mar:  does a trunk that already moves the agent (the discrete model's) carry over to MAR? marA (MAR_INIT on
  #       tokenizer_cont, the control) and marB (the same with --trunk models/hma_discrete_moves), lr 3e-4.
  # mar2: mar's winner (INIT, default runs/g15/gpu_marB, carried) trained on with and without the actions: marC
  #       (the next version) and marP (its passive control: INIT's weights, the action pathway left behind), lr 1.5e-4,
  #       as version 7 of hma_discrete_moves and its control were made.
  # Both arms side by side for TRAIN_MIN minutes. Data: one tar.xz (scripts/recipe.sh STAGE=gpu15data);
  # cheetah_big stays behind (the 64 MiB the device tool carries).
  unpack_data
  D=".devdata/data/sim/pusht .devdata/data/sim/reacher .devdata/data/sim/cheetah .devdata/data/big/pusht \
     .devdata/data/pose/pusht .devdata/data/reacher_big/reacher"
  MAR="--data $D --embodiments pusht,reacher,cheetah --motion-weight 5 --mixture pusht=0.7,reacher=0.15,cheetah=0.15 \
       --batch-size 32 --warmup 50 --steps ${MAR_STEPS:-30000} --minutes $TRAIN_MIN --save-every 100000 --eval-every 0 \
       --token-cache off --device $DEV --fp16"
  if [[ $GPU_STAGE == mar ]]; then
    RUNS="marA marB"
    MAR="$MAR --init ${MAR_INIT:-models/hma_mar_small} --tokenizer models/tokenizer_cont --lr 3e-4"
    ARM_A=""; ARM_B="--trunk models/hma_discrete_moves"
  else
    RUNS="marC marP"
    MAR="$MAR --init ${INIT:-runs/g15/gpu_marB} --lr 1.5e-4"
    ARM_A=""; ARM_B="--objective passive"
  fi
  set -- $RUNS
  rm -rf "runs/gpu_$1" "runs/gpu_$2"
  hma train $MAR $ARM_A --out "runs/gpu_$1" > "$OUT/res/train_$1.log" 2>&1 &
  hma train $MAR $ARM_B --out "runs/gpu_$2" > "$OUT/res/train_$2.log" 2>&1 &
  wait
  send_back $RUNS
fi

if [[ ${GPU_STAGE:-1} == graphs ]]; then
  # 1. imagination speed path by path (eager, CUDA graphs, graphs + fused elementwise steps; fp32,
  #    bf16) at HMA-Base and the shipped size, and the paths' token agreement (benchmarks/gpu_graphs.py)
  mkdir -p /tmp/gbench
  timeout "${BENCH_S:-270}" python3 benchmarks/gpu_graphs.py --out /tmp/gbench ${GRAPHS_ARGS:-} 2>&1 | tee /tmp/gbench/graphs.log \
    || echo "gpu_graphs.py stopped (rc $?)"
  tar czf "$OUT/bench.tgz" -C /tmp gbench  # back even if the training below runs out of time
  echo "bench done at $(( $(date +%s) - t0 )) s"
  # 2. side by side for TRAIN_MIN minutes: the shipped dynamics continued at batch 32 (its own
  #    tokenizer; the 2,887 CPU steps that made version 4 were batch 8), and the shipped
  #    tokenizer's decoder alone (the encoder, so the tokens, bitwise), as on the CPU but ~10x the steps
  D=".devdata/sim .devdata/big/pusht .devdata/pose/pusht"
  hma train --data $D --embodiments pusht,reacher,cheetah --init models/hma_discrete_moves --motion-weight 5 \
    --mixture pusht=0.7,reacher=0.15,cheetah=0.15 --batch-size 32 --lr 3e-4 --warmup 50 --steps "${STEPS:-2800}" \
    --minutes "$TRAIN_MIN" --save-every 100000 --eval-every 0 --device $DEV --fp16 --out runs/gpu_dyn5 \
    > "$OUT/res/train_dyn5.log" 2>&1 &
  hma train-tokenizer --data $D --init models/hma_discrete_moves --decoder-only --motion-weight 20 --lr 5e-4 \
    --minutes "$TRAIN_MIN" --device $DEV --out runs/gpu_dec5 > "$OUT/res/train_dec5.log" 2>&1 &
  wait
  for R in dyn5 dec5; do
    cp "runs/gpu_$R/model.safetensors" "$OUT/gpu_$R.safetensors" || echo "no runs/gpu_$R"
    cp "runs/gpu_$R/config.yaml" "$OUT/res/gpu_$R.config.yaml"
    cp "runs/gpu_$R/train_log.csv" "$OUT/res/gpu_$R.train_log.csv"
  done
  tar czf "$OUT/results.tgz" -C "$OUT" res && rm -rf "$OUT/res"
  echo "graphs stage done at $(( $(date +%s) - t0 )) s"
  exit 0
fi

if [[ ${GPU_STAGE:-1} == 2 ]]; then
  MX=(--mixture pusht=0.7,reacher=0.15,cheetah=0.15)
  for R in pose more; do
    D=".devdata/sim .devdata/big/pusht"
    [[ $R == pose ]] && D="$D .devdata/pose/pusht"
    hma train --data $D --embodiments pusht,reacher,cheetah --init "${INIT:-runs/gpu_big}" --motion-weight 5 \
      --warmup 50 --save-every 100000 --eval-every 0 --device $DEV --batch-size 32 --steps "${STEPS2:-2600}" \
      --lr 3e-4 --minutes "$TRAIN_MIN" "${MX[@]}" --fp16 --out "runs/gpu_$R" > "$OUT/res/train_$R.log" 2>&1 &
  done
  wait
  for R in pose more; do
    cp "runs/gpu_$R/model.safetensors" "$OUT/gpu_$R.safetensors"
    cp "runs/gpu_$R/config.yaml" "$OUT/res/gpu_$R.config.yaml"
    cp "runs/gpu_$R/train_log.csv" "$OUT/res/gpu_$R.train_log.csv"
  done
  tar czf "$OUT/results.tgz" -C "$OUT" res && rm -rf "$OUT/res"
  echo "stage 2 done at $(( $(date +%s) - t0 )) s"
  exit 0
fi

# ---- 1. inference speed
BASE=layers=32,d=256,heads=16,grid=16,res=256
[[ $BENCH == 1 ]] && for P in bf16 fp32; do
  hma bench --geometry $BASE --device cuda --precision $P --repeats 10 --json "$OUT/res/bench_base_$P.json" >/dev/null \
    || echo "bench base $P failed"
done
[[ $BENCH == 1 ]] && hma bench --ckpt models/hma_discrete_moves --device cuda --repeats 10 --json "$OUT/res/bench_moves_b1.json" >/dev/null
[[ $BENCH == 1 ]] && hma bench --ckpt models/hma_discrete_moves --device cuda --batch 16 --repeats 5 --json "$OUT/res/bench_moves_b16.json" >/dev/null
echo "bench done at $(( $(date +%s) - t0 )) s"

# ---- 2. training throughput at the shipped size, one process
COMMON="--embodiments pusht,reacher,cheetah --init models/hma_discrete_moves --motion-weight 5 --warmup 100 \
  --save-every 100000 --eval-every 0 --device $DEV"
hma train --data .devdata/sim $COMMON --batch-size 8 --steps $TPUT_STEPS --lr 3e-4 --out /tmp/tput8 \
  --mixture pusht=0.7,reacher=0.15,cheetah=0.15 > "$OUT/res/tput8.log" 2>&1
cp /tmp/tput8/train_log.csv "$OUT/res/tput8_log.csv"
rate() {  # steps/s between logged step 10 and the last (tokenization, warm-up and CUDA start left out)
  python3 -c "
import csv, sys; r={int(x['step']):float(x['seconds']) for x in csv.DictReader(open(sys.argv[1]))}
print((max(r)-10)/(r[max(r)]-r[10]))" "$1"
}
RATE=$(rate /tmp/tput8/train_log.csv)
echo "training at batch 8, one process: $RATE steps/s" | tee "$OUT/res/tput.txt"

# ---- 3. three runs side by side; their step count from a 3-process calibration
LEFT=$(python3 -c "print(max(1.0, $TRAIN_MIN))")
MX=(--mixture pusht=0.7,reacher=0.15,cheetah=0.15)
for R in big ctrl corr; do
  D=".devdata/sim"; X=""
  [[ $R != ctrl ]] && D=".devdata/sim .devdata/big/pusht"
  [[ $R == corr ]] && X="--corrupt-prob 0.1"
  hma train --data $D $COMMON $X --batch-size 32 --steps $CAL_STEPS --lr 5e-4 "${MX[@]}" --out /tmp/cal_$R > /tmp/cal_$R.log 2>&1 &
done
wait
STEPS=$(python3 -c "print(int(min($(rate /tmp/cal_big/train_log.csv), $(rate /tmp/cal_ctrl/train_log.csv), \
  $(rate /tmp/cal_corr/train_log.csv)) * 60 * $LEFT * 0.95))")
echo "3 runs side by side at batch 32: $STEPS steps each in $LEFT min" | tee -a "$OUT/res/tput.txt"
for R in big ctrl corr; do
  D=".devdata/sim"; X=""
  [[ $R != ctrl ]] && D=".devdata/sim .devdata/big/pusht"
  [[ $R == corr ]] && X="--corrupt-prob 0.1"
  hma train --data $D $COMMON $X --batch-size 32 --steps "$STEPS" --lr 5e-4 --minutes "$LEFT" "${MX[@]}" --fp16 \
    --out "runs/gpu_$R" > "$OUT/res/train_$R.log" 2>&1 &
done
wait
for R in big ctrl corr; do
  cp "runs/gpu_$R/model.safetensors" "$OUT/gpu_$R.safetensors"
  cp "runs/gpu_$R/config.yaml" "$OUT/res/gpu_$R.config.yaml"
  cp "runs/gpu_$R/train_log.csv" "$OUT/res/gpu_$R.train_log.csv"
done
tar czf "$OUT/results.tgz" -C "$OUT" res && rm -rf "$OUT/res"
echo "all done at $(( $(date +%s) - t0 )) s"
