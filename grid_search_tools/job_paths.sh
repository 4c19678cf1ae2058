# Sourced by run_cls.sh and run_mrc.sh, with MODEL, TASK and NAME (LR_BS_DROPOUT) set: where the
# job's log and results record go (RUN_DIR/TASK/NAME.{log,json}; RUN_DIR is the folder named after
# the model, or CLUE_RUN_DIR), and the skip of a job whose record is complete.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python}
export PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}" FLAGS_cudnn_deterministic=True
RUN_DIR=${CLUE_RUN_DIR:-$("$PYTHON" -m cluebench.grid run-dir "$MODEL")}
LOG="$RUN_DIR/$TASK/$NAME.log"
RECORD="$RUN_DIR/$TASK/$NAME.json"
if "$PYTHON" -m cluebench.results complete "$RECORD"; then
    echo "skip: $RECORD is complete"
    exit 0
fi
mkdir -p "$RUN_DIR/$TASK"
