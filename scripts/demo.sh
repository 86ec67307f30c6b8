#!/usr/bin/env bash
# The whole chapter on one local shared root, offline: train with every
# callback, export embeddings to the Projector, a distributed search (a chief
# and two workers), the report, then TensorBoard on 127.0.0.1.
#
# Settings come from the environment (mk/demo.mk passes them):
#   DEMO_ROOT   the shared root (default runs/demo)
#   DEMO_PORT   TensorBoard's port (default 6006; 0 picks a free one)
#   DEMO_SERVE  1: serve TensorBoard until Ctrl-C at the end; 0: stop after
#               the report (for CI and the browser test)
#   BIN, MAKE   the virtual environment's bin folder and the make to call
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_ROOT=${DEMO_ROOT:-runs/demo}
DEMO_PORT=${DEMO_PORT:-6006}
DEMO_SERVE=${DEMO_SERVE:-1}
BIN=${BIN:-.venv/bin}
MAKE=${MAKE:-make}
RUN=demo-digits
PROJECT=demo-search

# Several TensorFlow processes share the machine's cores: one thread each.
export TF_CPP_MIN_LOG_LEVEL=2 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-}

step() { printf '\n== %s\n' "$*"; }

step "1/5 train $RUN: checkpoints, early stopping, TensorBoard, step learning rate"
"$BIN/kerasjobs" train --root "$DEMO_ROOT" --run-name "$RUN" --epochs 12 \
  --patience 4 --lr-schedule step --lr-step-epochs 4 --warmup-epochs 2 \
  --histogram-freq 1 --progress line

step "2/5 embed $RUN's test images into the Projector"
"$BIN/kerasjobs" embed --root "$DEMO_ROOT" --run "$RUN"

step "3/5 tune $PROJECT: a chief and two workers on 127.0.0.1"
"$MAKE" --no-print-directory tune ROOT="$DEMO_ROOT" WORKERS=2 \
  TUNE_ARGS="--project $PROJECT --max-trials 4 --epochs 3 --progress line"

step "4/5 report"
"$BIN/kerasjobs" report --root "$DEMO_ROOT"

if [ "$DEMO_SERVE" = "0" ]; then
  exit 0
fi
step "5/5 TensorBoard for $DEMO_ROOT"
if [ "$DEMO_PORT" = "0" ]; then
  echo "TensorBoard picks a free port: open the address it logs (Ctrl-C stops it)"
else
  echo "open http://127.0.0.1:$DEMO_PORT/ (Ctrl-C stops it)"
fi
exec "$BIN/kerasjobs" tensorboard --root "$DEMO_ROOT" --host 127.0.0.1 \
  --port "$DEMO_PORT"
