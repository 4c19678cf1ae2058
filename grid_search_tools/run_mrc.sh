#!/usr/bin/env bash
# One reading-comprehension job of the grid.
#   bash run_mrc.sh MODEL TASK BATCH_SIZE LR GRAD_ACCU_STEPS [--rerun_seed S] [more flags for mrc/run_TASK.py]
# TASK: chid, cmrc2018 or c3. BATCH_SIZE is the global batch. With CLUE_CARDS=k (k > 1; the
# scheduler sets it and CUDA_VISIBLE_DEVICES) the job runs on k cards through
# paddle.distributed.launch, each with BATCH_SIZE/k and GRAD_ACCU_STEPS/k: same micro-batch.
# Log: RUN_DIR/TASK/LR_BS_0.1.log and its results record (.json); a complete record skips the job.
# Bad arguments are said on stderr (exit 2), before any folder is made.
set -euo pipefail
USAGE="usage: bash run_mrc.sh MODEL TASK BATCH_SIZE LR GRAD_ACCU_STEPS [flags]"
source "$(dirname "$0")/job_paths.sh"
[ $# -ge 5 ] || bad "5 arguments needed, $# given"
MODEL=$1 TASK=${2,,} BS=$3 LR=$4 GAS=$5
shift 5
if [ "${1:-}" = --rerun_seed ]; then rerun_seed "${2:-}"; shift 2; fi
need_task "$TASK" reading
need_count BATCH_SIZE "$BS"
need_number LR "$LR"
need_count GRAD_ACCU_STEPS "$GAS"
CARDS=${CLUE_CARDS:-1}
need_count CLUE_CARDS "$CARDS"
(( BS % CARDS == 0 && GAS % CARDS == 0 )) ||
    bad "CLUE_CARDS $CARDS does not divide BATCH_SIZE $BS and GRAD_ACCU_STEPS $GAS"
read -r MAX_SEQ EPOCHS WARMUP <<< "$("$PYTHON" -m cluebench.tasks wrapper "$TASK")"  # the registry's
NAME="${LR}_${BS}_0.1"
job_paths
LAUNCH=()
if [ "$CARDS" -gt 1 ]; then
    LAUNCH=(-m paddle.distributed.launch --nproc_per_node "$CARDS" --log_dir "$STEM.ranks")
fi
run_logged "$PYTHON" -u "${LAUNCH[@]}" "$HERE/../mrc/run_$TASK.py" \
    --model_name_or_path "$MODEL" --batch_size $((BS / CARDS)) --learning_rate "$LR" \
    --max_seq_length "$MAX_SEQ" --num_train_epochs "$EPOCHS" \
    --output_dir "$JOB_DIR" --logdir "$JOB_DIR/visualdl" --do_train --do_predict --seed "$SEED" --weight_decay 0.01 \
    --logging_steps 100 --warmup_proportion "$WARMUP" --gradient_accumulation_steps $((GAS / CARDS)) \
    --save_best_model False --results_file "$RECORD" --device gpu "$@"
