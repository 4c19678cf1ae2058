#!/usr/bin/env bash
# One classification job of the grid.
#   bash run_cls.sh TASK LR BS EPOCH MAX_SEQ_LEN MODEL GRAD_ACC DROPOUT [--rerun_seed S] [more flags for run_clue_classifier.py]
# e.g. bash run_cls.sh tnews 2e-05 32 3 128 ernie-3.0-medium-zh 1 0.1 --device cpu --data_dir ~/clue
# Log: RUN_DIR/TASK/LR_BS_DROPOUT.log, results record beside it (.json): see job_paths.sh. Bad
# arguments are said on stderr (exit 2), before any folder is made.
set -euo pipefail
USAGE="usage: bash run_cls.sh TASK LR BS EPOCH MAX_SEQ_LEN MODEL GRAD_ACC DROPOUT [flags]"
source "$(dirname "$0")/job_paths.sh"
[ $# -ge 8 ] || bad "8 arguments needed, $# given"
TASK=${1,,} LR=$2 BS=$3 EPOCH=$4 MAX_SEQ_LEN=$5 MODEL=$6 GRAD_ACC=$7 DROPOUT=$8
shift 8
if [ "${1:-}" = --rerun_seed ]; then rerun_seed "${2:-}"; shift 2; fi
need_task "$TASK" classification
need_number LR "$LR"
need_count BS "$BS"
need_count EPOCH "$EPOCH"
need_count MAX_SEQ_LEN "$MAX_SEQ_LEN"
need_count GRAD_ACC "$GRAD_ACC"
need_number DROPOUT "$DROPOUT"
NAME="${LR}_${BS}_${DROPOUT}"
job_paths
# the job's own folder (jobs differing only in dropout run at once; a run locks it): its test predictions,
# made with the best dev weights (kept in memory, not on disk), and its VisualDL scalars
run_logged "$PYTHON" -u "$HERE/../classification/run_clue_classifier.py" \
    --model_name_or_path "$MODEL" --task_name "$TASK" --max_seq_length "$MAX_SEQ_LEN" \
    --batch_size "$BS" --learning_rate "$LR" --num_train_epochs "$EPOCH" \
    --logging_steps 100 --seed "$SEED" --save_steps 100 --warmup_proportion 0.1 --weight_decay 0.01 \
    --adam_epsilon 1e-8 --output_dir "$JOB_DIR" --logdir "$JOB_DIR/visualdl" \
    --gradient_accumulation_steps "$GRAD_ACC" --do_train --do_predict --dropout "$DROPOUT" --save_best_model False \
    --results_file "$RECORD" --device gpu "$@"
