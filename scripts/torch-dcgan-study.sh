#!/usr/bin/env bash
# The DCGAN recipe study, trained in PyTorch: a 20-epoch run of scripts/torch_dcgan.py takes
# about 10 minutes of one core here, wgen's about 2.3 hours of lavapipe, and the two follow the
# same course (README, "The DCGAN"). Each recipe × seed is trained for EPOCHS (default 20) with
# its generator saved every 5 epochs, each save scored by `wgen eval` (wgen's classifier, 5,000
# samples; with --g-ema the averaged G too, as recipe 'NAME +ema'), then `torch_dcgan.py table`
# prints the table.
#
#   scripts/torch-dcgan-study.sh OUT 'NAME [FLAGS...]' ...
#   scripts/torch-dcgan-study.sh runs/dcgan-recipes base 'dlr5e-5 --d-lr 5e-5' 'nodbn --no-d-batchnorm'
#
# FLAGS are torch_dcgan.py train's (--label-smoothing, --d-lr, --no-d-batchnorm, --spectral-norm,
# --loss, --augment, --instance-noise, --d-dropout, --mbstd, --g-lr, --g-steps, --g-ema; not --epochs: set EPOCHS, a
# multiple of 5). SEEDS (default 0 1 2), JOBS (runs at a time, default 2, one thread each),
# PYTHON (one with torch, numpy and safetensors; default python3) and WGEN (a wgen binary;
# default this checkout's release build) override. A finished run is kept.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:?usage: scripts/torch-dcgan-study.sh OUT 'NAME [FLAGS...]' ...}
shift
[ $# -gt 0 ] || { echo "error: name at least one recipe, e.g. 'base' or 'dlr5e-5 --d-lr 5e-5'" >&2; exit 2; }
export PYTHON=${PYTHON:-python3} OUT=$out XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} EPOCHS=${EPOCHS:-20}
[ $((EPOCHS % 5)) -eq 0 ] && [ "$EPOCHS" -gt 0 ] || { echo "error: EPOCHS must be a positive multiple of 5 (saves are scored every 5)" >&2; exit 2; }
if [ -z "${WGEN:-}" ]; then
    cargo build --release --quiet
    export WGEN=target/release/wgen
fi
mkdir -p "$out"
one() {
    set -- $1
    local name=$1 seed=$2 dir
    shift 2
    dir=$OUT/$name-seed$seed
    if [ ! -f "$dir/eval$EPOCHS.json" ]; then
        "$PYTHON" -W ignore scripts/torch_dcgan.py train --seed "$seed" --epochs "$EPOCHS" --save-every 5 --out "$dir" "$@" > "$dir.jsonl"
        for e in $(seq 5 5 "$EPOCHS"); do
            for v in "" -ema; do
                [ -f "$dir/epoch$e$v.safetensors" ] || continue
                "$WGEN" eval "$dir/epoch$e$v.safetensors" -q
                mv "$dir/epoch$e$v.eval.json" "$dir/eval$e$v.json"
            done
        done
    fi
    echo "$dir: done"
}
export -f one
for recipe in "$@"; do
    for seed in ${SEEDS:-0 1 2}; do
        set -- $recipe
        name=$1
        shift
        echo "$name $seed $*"
    done
done | xargs -P "${JOBS:-2}" -I{} bash -c 'one "$@"' _ {}
"$PYTHON" scripts/torch_dcgan.py table "$out" | tee "$out/table.md"
