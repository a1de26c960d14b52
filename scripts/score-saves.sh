#!/usr/bin/env bash
# Scores the saves that `SAVE_EVERY=N scripts/gan-study.sh` keeps, with wgen's built-in judge
# and, when TORCH_JUDGE names a model from `scripts/torch_judge.py train`, with that PyTorch CNN
# too, on the very same samples. One JSON line per save and judge in OUT/scores.jsonl, then a
# table per epoch.
#
#   scripts/score-saves.sh OUT RUN...
#
# JUDGES lists wgen's classifiers to score with: `built-in` (the default) and model files from
# `wgen train classifier`, each labelled by its file name.
# A run's epochN.safetensors is what model.safetensors held then (with --g-ema, the average of
# G) and epochN-checkpoint.safetensors holds G's own weights. EPOCHS (e.g. "10 25 50") and
# WEIGHTS (average or G) pick some of the saves. SAMPLES (default 5000) and SEED (default 0)
# set the draw; WGEN and PYTHON name the programs (default target/release/wgen and
# python3). Saves already in OUT/scores.jsonl are skipped, so it can be run again after a stop;
# scoring the same saves with other JUDGES therefore wants another OUT.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=$1
shift
wgen=${WGEN:-target/release/wgen}
python=${PYTHON:-python3}
samples=${SAMPLES:-5000}
seed=${SEED:-0}
mkdir -p "$out"
scores=$out/scores.jsonl
touch "$scores"
for run in "$@"; do
    name=$(basename "$run")
    for file in $(ls "$run"/epoch*.safetensors | sort -V); do
        base=$(basename "$file" .safetensors)
        epoch=${base#epoch}
        epoch=${epoch%-checkpoint}
        [ -n "${EPOCHS:-}" ] && [[ " $EPOCHS " != *" $epoch "* ]] && continue
        weights=average
        [[ $base == *-checkpoint ]] && weights=G
        [ -n "${WEIGHTS:-}" ] && [ "$WEIGHTS" != "$weights" ] && continue
        grep -q "\"run\": \"$name\", \"epoch\": $epoch, \"weights\": \"$weights\"" "$scores" && continue
        work=$(mktemp -d)
        cp "$file" "$work/model.safetensors"
        line=
        for judge in ${JUDGES:-built-in}; do
            if [ "$judge" = built-in ]; then
                "$wgen" eval "$work/model.safetensors" --samples "$samples" --seed "$seed" -q
            else
                "$wgen" eval "$work/model.safetensors" --samples "$samples" --seed "$seed" --classifier "$judge" -q
            fi
            line="$line${line:+$'\n'}"$("$python" -c '
import json, sys
e = json.load(open(sys.argv[1]))["samples"]
keep = ("fd", "inception_score", "modes", "smallest_share", "effective_classes", "class_shares")
print(json.dumps({"run": sys.argv[2], "epoch": int(sys.argv[3]), "weights": sys.argv[4], "judge": sys.argv[5], **{k: e[k] for k in keep}}))
' "$work/eval.json" "$name" "$epoch" "$weights" "$(basename "$judge" .safetensors)")
        done
        if [ -n "${TORCH_JUDGE:-}" ]; then
            "$wgen" sample "$work/model.safetensors" --n "$samples" --seed "$seed" --raw "$work/samples.f32" -q
            torch=$("$python" scripts/torch_judge.py score "$TORCH_JUDGE" "$work/samples.f32" | "$python" -c '
import json, sys
t = json.loads(sys.stdin.read())
keep = ("fd", "inception_score", "modes", "smallest_share", "effective_classes", "class_shares")
print(json.dumps({"run": sys.argv[1], "epoch": int(sys.argv[2]), "weights": sys.argv[3], "judge": "torch", **{k: t[k] for k in keep}}))
' "$name" "$epoch" "$weights")
            line="$line"$'\n'"$torch"
        fi
        echo "$line" >> "$scores"
        rm -rf "$work"
        echo "$name epoch $epoch ($weights): scored"
    done
done
"$python" - "$scores" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| run | epoch | weights | judge | FD | IS | classes ≥ 5% | smallest class (%) | effective classes | shares of 0–9 (%) |")
print("| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
for r in sorted(rows, key=lambda r: (r["run"], r["epoch"], r["weights"], r["judge"])):
    shares = " ".join(f"{100 * s:.0f}" for s in r["class_shares"])
    print(f'| {r["run"]} | {r["epoch"]} | {r["weights"]} | {r["judge"]} | {r["fd"]:.1f} | {r["inception_score"]:.2f} | {r["modes"]} | '
          f'{100 * r["smallest_share"]:.1f} | {r["effective_classes"]:.2f} | {shares} |')
EOF
