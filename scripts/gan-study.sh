#!/usr/bin/env bash
# The GAN quality study: each update order × seeds 0, 1, 2, 50 epochs (the DCGAN: 30), samples
# scored every 5 epochs by the built-in digit classifier; then the table (`wgen compare`).
#
#   scripts/gan-study.sh [OUT] [-- TRAIN FLAGS...]
#
# OUT defaults to runs/gan-study. Flags after `--` go to every run (a remedy to measure, e.g.
# `-- --label-smoothing 0.1`; give each remedy its own OUT). MODEL (gan or dcgan), ORDERS,
# SEEDS and EPOCHS override the grid; WGEN names a wgen binary to use instead of building this
# checkout's. A finished run is kept, an interrupted one resumed, so the script can be run again
# after a stop. SAVE_EVERY=N keeps every N-th epoch's model.safetensors (with --g-ema, the average
# of G) as epochN.safetensors and its checkpoint (G's own weights) as epochN-checkpoint.safetensors,
# to score later with any judge (`wgen eval FILE`); EVAL_EVERY=0 leaves scoring out of training.
# On lavapipe (2 cores) a 50-epoch MLP GAN run takes about 31 minutes, a 30-epoch
# DCGAN run about 50 minutes (its default recipe's coverage is measured at epoch 30).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-runs/gan-study}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
model=${MODEL:-gan}
orders=${ORDERS:-d-first g-first}
seeds=${SEEDS:-0 1 2}
if [ "$model" = dcgan ]; then
    epochs=${EPOCHS:-30}
    table_epochs=10,20,$epochs
else
    epochs=${EPOCHS:-50}
    table_epochs=10,25,$epochs
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
if [ -z "${WGEN:-}" ]; then
    cargo build --release --quiet
fi
wgen=${WGEN:-target/release/wgen}
runs=()
for order in $orders; do
    for seed in $seeds; do
        dir=$out/$order-seed$seed
        runs+=("$dir")
        # Trains to each save in turn: a resumed run ends as if never stopped.
        for stop in $(seq "${SAVE_EVERY:-$epochs}" "${SAVE_EVERY:-$epochs}" "$epochs"); do
            if grep -q "\"epoch\":$stop[,}]" "$dir/metrics.jsonl" 2>/dev/null; then
                continue
            elif [ -f "$dir/checkpoint.safetensors" ]; then
                "$wgen" train --resume "$dir" --epochs "$stop" -q
            else
                "$wgen" train "$model" --epochs "$stop" --seed "$seed" --update-order "$order" --eval-every "${EVAL_EVERY:-5}" --out "$dir" -q "$@"
            fi
            if [ -n "${SAVE_EVERY:-}" ]; then
                cp "$dir/model.safetensors" "$dir/epoch$stop.safetensors"
                cp "$dir/checkpoint.safetensors" "$dir/epoch$stop-checkpoint.safetensors"
            fi
        done
        echo "$dir: done"
    done
done
if [ "${EVAL_EVERY:-5}" != 0 ]; then
    "$wgen" compare "${runs[@]}" --epochs "$table_epochs" | tee "$out/table.md"
fi
