"""The grid as Slurm job arrays: Slurm itself places every job (`grid_search.py MODEL --slurm [--submit]`).

One array per kind of allocation, one element per grid job: the classification jobs on one card each,
the reading-comprehension jobs grouped by the registry's card count (CMRC2018 on 2, CHID and C3 on 4),
all cards of an element on one node. An element runs exactly its job through the grid wrapper
(run_cls.sh, or run_mrc.sh with CLUE_CARDS), with the flags grid_search.py gives its own jobs; a job
whose results record is complete exits at once ("skip: ..."), so resubmitting resumes. Jobs complete
when the scripts are written are left out of the arrays.

Written to RUN_DIR/slurm/: warmup.sbatch (the warm-up as one job; the arrays wait for it to succeed),
the arrays (rc4.sbatch, cls.sbatch, rc2.sbatch), report.sbatch (extract_result.sh and make_submission.py
once the arrays have ended) and submit.sh, which submits them in that order with their dependencies;
Slurm's own output goes to RUN_DIR/slurm/logs/. Each array script holds its job table (array index ->
job) itself: sbatch keeps a copy of the script as submitted, so writing the scripts again (say for the
jobs still missing) never changes what a queued element runs.

Order: within an array the elements go longest job first, and the arrays are submitted longest job
first, so Slurm (which starts pending jobs in submission order) starts the long CHID jobs at once and
fills the cards around them, the rule scheduler.Scheduler follows on one machine
(benchmarks/bench_scheduler.py compares the two orders on 2 to 8 nodes).

Imports no Paddle: grid_search.py starts without it.
"""

import argparse
import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys

from .. import tasks
from . import scheduler

SCRIPTS = ("warmup.sbatch", "report.sbatch", "submit.sh")
ARRAY_SCRIPT = re.compile(r"^(cls|rc\d+)\.sbatch$")
TIME = re.compile(r"^(\d+-\d+(:\d+){0,2}|\d+(:\d+){0,2}|UNLIMITED|INFINITE)\Z", re.I)  # sbatch --time's forms
MEMORY = re.compile(r"^\d+[KMGT]?\Z")  # \Z: $ would let a final line break through
NAME = re.compile(r"^[\w.,+-]+\Z", re.ASCII)  # partitions (comma lists) and accounts


# ---------------------------------------------------------------- flags (grid_search.py's)
def add_arguments(parser):
    s = parser.add_argument_group("Slurm (one job-array element per grid job; Slurm places them)")
    s.add_argument(
        "--slurm",
        action="store_true",
        help="write Slurm job-array scripts to RUN_DIR/slurm/ instead of running the jobs here",
    )
    s.add_argument(
        "--submit", action="store_true", help="with --slurm: also submit them (sbatch), printing the job ids"
    )
    s.add_argument("--partition", help="sbatch --partition of every job")
    s.add_argument("--account", help="sbatch --account of every job")
    s.add_argument("--time", help="sbatch --time of each job (an array element is one grid job), e.g. 12:00:00")
    s.add_argument("--array_limit", type=_count, metavar="N", help="at most N elements of an array at once (%%N)")
    s.add_argument("--cpus_per_gpu", type=_count, metavar="N", help="sbatch --cpus-per-gpu")
    s.add_argument("--mem_per_gpu", metavar="MEM", help="sbatch --mem-per-gpu, e.g. 32G")


def _count(text):
    if not re.fullmatch(r"[1-9]\d*", text):
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, not {text!r}")
    return int(text)


def check_arguments(parser, args):
    """One argparse error (exit 2) for a flag that does not go with the others."""
    slurm_only = [
        f"--{name}"
        for name in ("submit", "partition", "account", "time", "array_limit", "cpus_per_gpu", "mem_per_gpu")
        if getattr(args, name) not in (None, False)
    ]
    if not args.slurm:
        if slurm_only:
            parser.error(f"{slurm_only[0]} goes with --slurm")
        return
    if args.slots is not None:
        parser.error("--slots is for jobs run here; with --slurm each job gets its own allocation")
    if args.job_timeout is not None:
        parser.error("--job_timeout is for jobs run here; with --slurm give each job --time")
    if args.time is not None and not TIME.match(args.time):
        parser.error(f"--time {args.time!r} is not a Slurm time (MINUTES, HH:MM:SS, DAYS-HH[:MM[:SS]])")
    if args.mem_per_gpu is not None and not MEMORY.match(args.mem_per_gpu):
        parser.error(f"--mem_per_gpu {args.mem_per_gpu!r} is not a Slurm size (e.g. 32G, 4096M)")
    for name in ("partition", "account"):
        value = getattr(args, name)
        if value is not None and not NAME.match(value):
            parser.error(f"--{name} {value!r}: letters, digits and . , + - _ only")


# ---------------------------------------------------------------- the arrays
@dataclasses.dataclass
class Array:
    name: str  # cls, or rcK: reading comprehension on K cards
    cards: int  # per element (GPUs; on the CPU one process)
    jobs: list  # index = array index

    @property
    def script(self):
        return self.name + ".sbatch"


def cards(job, device="gpu"):
    """Cards of one element: 1 for classification (and on the CPU); the registry's count for reading
    comprehension (the largest one dividing the batch and the accumulation, as run_mrc.sh needs)."""
    if device != "gpu" or not job.is_reading:
        return 1
    return scheduler.card_options(job, tasks.get(job.task).grid.cards)[0]


def duration(job, device="gpu"):
    """The scheduler's size estimate over the element's cards (relative): what orders elements and arrays."""
    return scheduler.work_estimate(job) / cards(job, device)


def plan(jobs, directory, device="gpu"):
    """(arrays, complete): the jobs without a complete record grouped into arrays, each longest job first,
    the arrays longest first; complete, the jobs left out."""
    pending = [j for j in jobs if not scheduler.is_complete(directory, j)]
    groups = {}
    for job in pending:
        k = cards(job, device)
        groups.setdefault(f"rc{k}" if job.is_reading else "cls", (k, []))[1].append(job)
    arrays = [
        Array(name, k, sorted(members, key=lambda j: -duration(j, device)))  # stable: ties in grid order
        for name, (k, members) in groups.items()
    ]
    arrays.sort(key=lambda a: -duration(a.jobs[0], device))
    return arrays, len(jobs) - len(pending)


# ---------------------------------------------------------------- the scripts
CLS_COLUMNS = (
    "index",
    "task",
    "name",
    "learning_rate",
    "batch_size",
    "epochs",
    "max_seq_length",
    "accumulation",
    "dropout",
)
RC_COLUMNS = ("index", "task", "name", "batch_size", "learning_rate", "accumulation")


def table(array):
    """The job table: a header and one tab-separated line per element (only task names and numbers)."""
    if array.name == "cls":
        rows = [
            (j.task, j.name, j.learning_rate, j.batch_size, j.epochs, j.max_seq_length, j.accumulation, j.dropout)
            for j in array.jobs
        ]
        columns = CLS_COLUMNS
    else:
        rows = [(j.task, j.name, j.batch_size, j.learning_rate, j.accumulation) for j in array.jobs]
        columns = RC_COLUMNS
    return "\n".join(["# " + "\t".join(columns)] + ["\t".join(map(str, (i,) + row)) for i, row in enumerate(rows)])


def sbatch_path(folder, pattern):
    """FOLDER/PATTERN for an #SBATCH line: double-quoted (sbatch groups quoted words, `\\"` is a quote), the
    folder's `%` doubled (a file-name pattern character; PATTERN's %A, %a, %j stay patterns). A backslash or
    a line break has no safe form there."""
    if "\\" in folder or "\n" in folder or "\r" in folder:
        raise scheduler.SetupError(
            f"--slurm: {folder!r} has a backslash or line break, which #SBATCH lines cannot hold"
        )
    return '"' + folder.replace('"', '\\"').replace("%", "%%") + "/" + pattern + '"'


def header(name, options, device, gpus, logs, pattern, array=None):
    lines = ["#!/bin/bash", f"#SBATCH --job-name=clue-{name}"]
    if array is not None:  # requeued on preemption; SIGTERM 2 minutes before the time limit (the job
        # writes its resume checkpoint); ended, not left pending, if the warm-up it waits for fails
        lines += [
            f"#SBATCH --array={array}",
            "#SBATCH --requeue",
            "#SBATCH --signal=B:TERM@120",
            "#SBATCH --kill-on-invalid-dep=yes",
        ]
    lines += ["#SBATCH --nodes=1", "#SBATCH --ntasks=1"]
    if device == "gpu" and gpus:
        lines.append(f"#SBATCH --gres=gpu:{gpus}")
        if options.get("cpus_per_gpu"):
            lines.append(f"#SBATCH --cpus-per-gpu={options['cpus_per_gpu']}")
        if options.get("mem_per_gpu"):
            lines.append(f"#SBATCH --mem-per-gpu={options['mem_per_gpu']}")
    elif gpus:  # the CPU: one process per element
        if options.get("cpus_per_gpu"):
            lines.append(f"#SBATCH --cpus-per-task={options['cpus_per_gpu']}")
        if options.get("mem_per_gpu"):
            lines.append(f"#SBATCH --mem={options['mem_per_gpu']}")
    for key in ("partition", "account", "time"):
        if options.get(key):
            lines.append(f"#SBATCH --{key}={options[key]}")
    lines.append(f"#SBATCH --output={sbatch_path(logs, pattern)}")
    return lines


def in_comment(text):
    """Text for a comment line: a line break in it would start a command."""
    return text.replace("\n", "\\n").replace("\r", "\\r")


def environment(model, directory, tools, python, device):
    q = shlex.quote
    lines = [
        f"MODEL={q(model)}",
        f"RUN_DIR={q(directory)}",
        f"TOOLS={q(tools)}",
        f'export CLUE_RUN_DIR="$RUN_DIR" PYTHON={q(python)} PYTHONUNBUFFERED=1',
    ]
    if device == "gpu":  # Slurm sets CUDA_VISIBLE_DEVICES to the element's cards
        lines.append("export FLAGS_allocator_strategy=auto_growth")
    else:
        lines.append('export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"')
    return lines


ELEMENT = r"""JOBS=$(cat <<'TABLE'
{table}
TABLE
)
row=$(awk -F '\t' -v i="${{SLURM_ARRAY_TASK_ID:?not an array element: submit this script with sbatch}}" \
    '$1 == i' <<< "$JOBS")
[ -n "$row" ] || {{ echo "{script}: error: no job $SLURM_ARRAY_TASK_ID in its table" >&2; exit 2; }}
IFS=$'\t' read -r {fields} <<< "$row"
echo "element $SLURM_ARRAY_TASK_ID of array ${{SLURM_ARRAY_JOB_ID:-?}}: $TASK $NAME on ${{HOSTNAME:-?}}\
${{CUDA_VISIBLE_DEVICES:+ (cards $CUDA_VISIBLE_DEVICES)}}; its log: $RUN_DIR/$TASK/$NAME.log"
cd "$TOOLS"
{command}
# The job in its own process group: a SIGTERM to this shell (--signal before the time limit, a preemption)
# reaches the training run, which writes its resume checkpoint; this shell waits until it has ended.
setsid "${{COMMAND[@]}}" &
job=$!
trap 'kill -TERM -- "-$job" 2>/dev/null || true' TERM INT
status=0
wait "$job" || status=$?
while kill -0 "$job" 2>/dev/null; do  # the wait was cut short by the signal
    status=0
    wait "$job" || status=$?
done
while kill -0 -- "-$job" 2>/dev/null; do sleep 1; done
exit "$status"
"""


def array_script(array, model, directory, tools, python, device, flags, options, logs):
    q = shlex.quote
    n = len(array.jobs)
    limit = f"%{options['array_limit']}" if options.get("array_limit") else ""
    lines = header(array.name, options, device, array.cards, logs, "%A_%a.out", f"0-{n - 1}{limit}")
    task_names = ", ".join(dict.fromkeys(j.task for j in array.jobs))
    what = (
        "classification jobs, one card each"
        if array.name == "cls"
        else f"reading-comprehension jobs on {array.cards} cards each"
        if device == "gpu"
        else "reading-comprehension jobs, one CPU process each"
    )
    lines += [
        f"# CLUE grid of {in_comment(model)}: {n} {what} ({task_names}), longest first.",
        "# Written by grid_search.py --slurm; submit.sh beside it submits it. Element i runs job i of the table",
        "# below through the grid wrapper; a job whose results record is complete exits at once (skip:), so",
        "# submitting again resumes. The job's own log: RUN_DIR/TASK/NAME.log; Slurm's: logs/%A_%a.out.",
        "set -euo pipefail",
    ]
    lines += environment(model, directory, tools, python, device)
    lines.append("FLAGS=(" + " ".join(map(q, flags)) + ")")
    if array.name == "cls":
        fields = "_ TASK NAME LR BS EPOCHS MAX_SEQ_LEN GRAD_ACC DROPOUT"
        command = (
            'COMMAND=(bash run_cls.sh "$TASK" "$LR" "$BS" "$EPOCHS" "$MAX_SEQ_LEN" "$MODEL" "$GRAD_ACC" '
            '"$DROPOUT" "${FLAGS[@]}")'
        )
    else:
        fields = "_ TASK NAME BS LR GAS"
        command = (
            f"export CLUE_CARDS={array.cards}\n"
            'COMMAND=(bash run_mrc.sh "$MODEL" "$TASK" "$BS" "$LR" "$GAS" "${FLAGS[@]}")'
        )
    return (
        "\n".join(lines)
        + "\n"
        + ELEMENT.format(table=table(array), script=array.script, fields=fields, command=command)
    )


def warmup_script(model, directory, tools, python, device, task_names, data_dir, options, logs):
    q = shlex.quote
    lines = header("warmup", options, device, 1, logs, "warmup_%j.out")
    lines += [
        "# The warm-up before the arrays (which start only if it succeeds): the data and the model checked",
        "# (or downloaded) and the reading-comprehension feature caches built, once.",
        "set -euo pipefail",
    ]
    lines += environment(model, directory, tools, python, device)
    command = ['"$PYTHON"', "warmup_dataset_and_model.py", '"$MODEL"', "--device", device, "--tasks", *task_names]
    if data_dir:
        command += ["--data_dir", q(data_dir)]
    return "\n".join(lines + ['cd "$TOOLS"', "exec " + " ".join(command)]) + "\n"


def report_script(model, directory, root, tools, python, data_dir, options, logs):
    q = shlex.quote
    lines = header("report", options, "cpu", 0, logs, "report_%j.out")
    lines += [
        "# After the arrays (however their elements ended): the result tables and the leaderboard zip.",
        "set -uo pipefail",
    ]
    lines += environment(model, directory, tools, python, "cpu")
    data = f" --data_dir {q(data_dir)}" if data_dir else ""
    lines += [
        f"ROOT={q(root)}",
        'cd "$TOOLS"',
        "status=0",
        'bash extract_result.sh "$MODEL" --output_root "$ROOT" || status=$?',
        f'"$PYTHON" make_submission.py "$MODEL" --output_root "$ROOT"{data} || status=$?',
        'exit "$status"',
    ]
    return "\n".join(lines) + "\n"


def report_commands(model, root, tools, python, data_dir):
    """The shell line that makes the tables and the zip by hand (what report.sbatch runs)."""
    q = shlex.quote
    return (
        f"cd {q(tools)} && bash extract_result.sh {q(model)} --output_root {q(root)} && "
        f"{q(python)} make_submission.py {q(model)} --output_root {q(root)}"
        + (f" --data_dir {q(data_dir)}" if data_dir else "")
    )


def submit_script(arrays, warmup, model, device):
    unit = "GPU" if device == "gpu" else "CPU process"
    lines = [
        "#!/bin/bash",
        f"# Submits the CLUE grid of {in_comment(model)}: "
        + ("the warm-up, then " if warmup else "")
        + "the arrays (longest jobs first), then the report.",
        "# Written by grid_search.py --slurm (which runs it with --submit). Running it again resubmits the same",
        "# jobs: those complete by then exit at once, the others resume from their checkpoints.",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        "mkdir -p logs",
        'command -v sbatch > /dev/null || { echo "submit.sh: error: sbatch is not on PATH" >&2; exit 2; }',
        'submit() { local id; id=$(sbatch --parsable "$@"); echo "${id%%;*}"; }',
    ]
    after = ""
    if warmup:
        lines += ["warmup=$(submit warmup.sbatch)", 'echo "warmup.sbatch: job $warmup (log: logs/warmup_$warmup.out)"']
        after = "--dependency=afterok:$warmup "
    for a in arrays:
        n, per = len(a.jobs), f"{a.cards} {unit}{'s' if a.cards > 1 else ''} each"
        lines += [
            f"{a.name}=$(submit {after}{a.script})",
            f'echo "{a.script}: array job ${a.name} ({n} element{"s" if n > 1 else ""}, {per})"',
        ]
    ids = ":".join(f"${a.name}" for a in arrays)
    lines += [
        f"report=$(submit --dependency=afterany:{ids} report.sbatch)",
        'echo "report.sbatch: job $report, once the arrays have ended: extract_result.sh and make_submission.py'
        ' (log: logs/report_$report.out)"',
        "printf \"Slurm's output: %s/logs/; each job's own log: RUN_DIR/TASK/NAME.log. Should the report job"
        ' not run: bash %q\\n" "$PWD" "$PWD/report.sbatch"',
    ]
    return "\n".join(lines) + "\n"


def check_script_value(what, value):
    """A SetupError naming what when value cannot go into a generated script as it is: a control character
    (a line break would start a new #SBATCH line or command) or bytes that are not UTF-8 (surrogateescape)."""
    text = str(value)
    bad = next((c for c in text if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise scheduler.SetupError(
            f"{what} {text!r}: has the control character {bad!r}, which a Slurm script cannot hold"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise scheduler.SetupError(f"{what} {ascii(text)}: is not UTF-8 (a file name's raw bytes); rename it") from None


def write(
    jobs,
    directory,
    model,
    *,
    device="gpu",
    flags=(),
    data_dir=None,
    root=".",
    options=None,
    tools,
    python,
    warmup=True,
    out=print,
):
    """Write RUN_DIR/slurm/ for the jobs (flags: what every job gets after --device); returns its path, or
    None when every job is complete (nothing written). Scripts of an earlier writing are replaced."""
    options, python = options or {}, os.path.abspath(python)
    values = [
        ("the model", model),
        ("the run folder", directory),
        ("the tools folder", tools),
        ("the Python", python),
        ("--data_dir", data_dir),
        ("--output_root", root),
        ("--device", device),
    ]
    values += [(f"--{key}", value) for key, value in options.items()] + [("a job flag", f) for f in flags]
    values += [("a job name", f"{j.task}/{j.name}") for j in jobs]
    for what, value in values:
        if value is not None:
            check_script_value(what, value)
    try:
        return _write(jobs, directory, model, device, flags, data_dir, root, options, tools, python, warmup, out)
    except OSError as e:  # a full or read-only disk: one line naming the file
        raise scheduler.SetupError(f"{e.filename}: cannot write: {e.strerror} (errno {e.errno})") from None


def _write(jobs, directory, model, device, flags, data_dir, root, options, tools, python, warmup, out):
    arrays, complete = plan(jobs, directory, device)
    folder = os.path.join(directory, "slurm")
    logs = os.path.join(folder, "logs")
    out(f"{complete} of {len(jobs)} jobs already complete (left out of the arrays); {len(jobs) - complete} to run")
    if os.path.isdir(folder):  # the previous writing's scripts; what was submitted is Slurm's own copy
        for entry in os.listdir(folder):
            if entry in SCRIPTS or ARRAY_SCRIPT.match(entry):
                os.remove(os.path.join(folder, entry))
    if not arrays:
        return None
    os.makedirs(logs, exist_ok=True)
    flags = ["--device", device, *flags]
    scripts = {a.script: array_script(a, model, directory, tools, python, device, flags, options, logs) for a in arrays}
    if warmup:
        pending = {j.task for a in arrays for j in a.jobs}
        names = [t for t in tasks.REGISTRY if t in pending]
        scripts["warmup.sbatch"] = warmup_script(
            model, directory, tools, python, device, names, data_dir, options, logs
        )
    scripts["report.sbatch"] = report_script(model, directory, root, tools, python, data_dir, options, logs)
    scripts["submit.sh"] = submit_script(arrays, warmup, model, device)
    for name, text in scripts.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(text)
    unit = "GPU" if device == "gpu" else "CPU process"
    for a in arrays:
        out(
            f"  {a.script}: {len(a.jobs)} elements, {a.cards} {unit}{'s' if a.cards > 1 else ''} each "
            f"({', '.join(dict.fromkeys(j.task for j in a.jobs))})"
        )
    out(f"Slurm scripts written to {folder}/: {', '.join(scripts)}")
    return folder


def main(args, jobs, directory, flags, tools, python):
    """grid_search.py --slurm [--submit]: the scripts, and with --submit their submission; an exit status."""
    if args.submit and shutil.which("sbatch") is None:
        print(
            "grid_search: error: --submit: sbatch is not on PATH (no Slurm here); without --submit the "
            "scripts are only written",
            file=sys.stderr,
        )
        return 2
    options = {
        k: getattr(args, k) for k in ("partition", "account", "time", "array_limit", "cpus_per_gpu", "mem_per_gpu")
    }
    data_dir = os.path.abspath(args.data_dir) if args.data_dir else None
    try:
        folder = write(
            jobs,
            directory,
            args.model,
            device=args.device,
            flags=flags,
            data_dir=data_dir,
            root=args.output_root,
            options=options,
            tools=tools,
            python=python,
            warmup=not args.skip_warmup,
            out=lambda line: print(line, flush=True),
        )
    except scheduler.SetupError as e:
        print(f"grid_search: error: {e}", file=sys.stderr)
        return 2
    if folder is None:
        print(
            "Nothing to submit: every job is complete. The tables and the zip: "
            + report_commands(args.model, args.output_root, tools, python, data_dir)
        )
        return 0
    submit = os.path.join(folder, "submit.sh")
    if not args.submit:
        print(f"Submit them with: bash {shlex.quote(submit)}   (or run this command again with --submit)")
        return 0
    return 0 if subprocess.run(["bash", submit]).returncode == 0 else 1
