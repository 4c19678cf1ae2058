# Sourced by run_cls.sh and run_mrc.sh (USAGE set): checks of their arguments, said on the terminal
# (stderr, exit 2) before anything becomes a path; then job_paths, with MODEL, TASK and NAME
# (LR_BS_DROPOUT) set: where the job's log, results record and folder go (RUN_DIR/TASK/NAME.{log,json}
# and RUN_DIR/TASK/NAME/ for its predictions; RUN_DIR is the folder named after the model, or
# CLUE_RUN_DIR), and the skip of a job whose record is complete. A seed rerun (rerun_seed: the wrapper's
# first flag --rerun_seed S) goes to RUN_DIR/TASK/seeds/NAME_sS.{log,json} and NAME_sS/ instead, where
# extract never looks: it is never a candidate for the task's best (grid.job_stem, the same paths).
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python}
export PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}" FLAGS_cudnn_deterministic=True

bad() {
    echo "$(basename "$0"): error: $*" >&2
    echo "$USAGE" >&2
    exit 2
}
need_task() {  # exactly one of the registry's names of a family ($2): never a path such as ../x
    set -- "$1" "$("$PYTHON" -m cluebench.tasks names "$2")"
    [ -n "$2" ] || bad "$PYTHON cannot list the tasks (python -m cluebench.tasks)"
    local task
    for task in $2; do
        [ "$1" = "$task" ] && return 0
    done
    bad "TASK '$1' is not one of: $2"
}
need_number() {  # a plain decimal number (2e-05, 0.1): no sign, no nan
    [[ $2 =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]] || bad "$1 '$2' is not a number"
}
need_count() {
    [[ $2 =~ ^[1-9][0-9]*$ ]] || bad "$1 '$2' is not a positive integer"
}

SEED=42  # the grid's seed (grid.GRID_SEED)
rerun_seed() {  # a seed rerun of a grid job: another seed, its own paths (job_paths)
    [[ $1 =~ ^[0-9]{1,9}$ ]] || bad "--rerun_seed '$1' is not a seed (an integer)"
    [ "$((10#$1))" -ne 42 ] || bad "--rerun_seed 42 is the grid's own seed"
    SEED=$((10#$1))
}

job_paths() {
    [ -n "$MODEL" ] || bad "MODEL is empty"
    RUN_DIR=${CLUE_RUN_DIR:-$("$PYTHON" -m cluebench.grid run-dir "$MODEL")}
    STEM="$RUN_DIR/$TASK/$NAME"
    [ "$SEED" -eq 42 ] || STEM="$RUN_DIR/$TASK/seeds/${NAME}_s$SEED"
    LOG="$STEM.log"
    RECORD="$STEM.json"
    JOB_DIR="$STEM/"
    if "$PYTHON" -m cluebench.results complete "$RECORD"; then
        echo "skip: $RECORD is complete"
        exit 0
    fi
    mkdir -p "$(dirname "$STEM")"
    # appended, not overwritten: an attempt that was killed (and is resumed now) keeps its log lines
    [ ! -s "$LOG" ] || echo "---- another attempt of this job, $(date '+%Y-%m-%d %H:%M:%S')" >> "$LOG"
}

# The training run, its output appended to the job's log. When it refuses its input, its one `error:`
# line is also said on the terminal, so a user running a wrapper by hand sees why.
run_logged() {
    local status=0
    "$@" >> "$LOG" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        tail -n 30 "$LOG" | grep -E '^([[:alnum:]_.-]+: )?error: ' | tail -n 1 >&2 || true
    fi
    return "$status"
}
