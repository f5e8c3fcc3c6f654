#!/usr/bin/env bash
# `make demo`: the main job on the weld cell, briefly — the scripted reference, a short
# training run, export to a controller bundle, a rollout with onnxruntime alone, and a signed
# certificate on the pre-registered weld benchmark, verified.
#
# Settings (environment): OUT (demo-out), ROBOCELL (.venv/bin/robocell), TIMESTEPS (20000),
# WORKERS (2).
set -euo pipefail
cd "$(dirname "$0")/.."

ROBOCELL=${ROBOCELL:-.venv/bin/robocell}
OUT=${OUT:-demo-out}
TIMESTEPS=${TIMESTEPS:-20000}
WORKERS=${WORKERS:-2}

step() { printf '\n== %s\n' "$*"; }

rm -rf "$OUT"
mkdir -p "$OUT"

step "the scripted welder (seam tracker only) on 3 seeds"
"$ROBOCELL" baseline robocell/WeldSeam-v0 --episodes 3 --seed 0

step "train PPO on robocell/WeldSeam-v0 for $TIMESTEPS steps (configs/weld_ppo.yaml)"
"$ROBOCELL" train configs/weld_ppo.yaml --set total_timesteps="$TIMESTEPS" \
    --set eval_freq=$((TIMESTEPS / 2)) --set checkpoint_freq=$((TIMESTEPS / 2)) \
    --set eval_episodes=5 --run-dir "$OUT/run" --quiet

step "export the best checkpoint as a controller bundle (ONNX + manifest)"
"$ROBOCELL" export "$OUT/run" -o "$OUT/bundle"

step "run the bundle in its cell with onnxruntime alone"
"$ROBOCELL" rollout "$OUT/bundle" --episodes 3 --seed 100 --video "$OUT/weld.gif"

step "certify the bundle on the weld benchmark (keys, secret seed and its commitment first)"
"$ROBOCELL" keys new -o "$OUT/keys"
commitment=$("$ROBOCELL" seeds new -o "$OUT/master.seed" | sed -n 's/^commitment: //p')
"$ROBOCELL" certify "$OUT/bundle" --benchmark weld --master-seed-file "$OUT/master.seed" \
    --commitment "$commitment" --key "$OUT/keys/certifier.key" -o "$OUT/cert" \
    --workers "$WORKERS" --no-progress
"$ROBOCELL" verify "$OUT/cert/certificate.json" --pubkey "$OUT/keys/certifier.pub" \
    --bundle "$OUT/bundle"

step "done"
echo "TensorBoard logs: $OUT/run/tb   (robocell tb $OUT/run)"
echo "bundle: $OUT/bundle   certificate: $OUT/cert/certificate.json   report: $OUT/cert/report.html"
