"""One CPU process against two ranks under paddle.distributed.launch, on real OCNLI; not run in CI.

    CLUE_DATA_DIR=../shared/clue_data .venv/bin/python benchmarks/bench_ranks.py [--steps 40]

The 4-layer, 312-hidden BERT (random weights, bert-base-chinese vocabulary) is trained by
classification/run_clue_classifier.py with its defaults (batch 32 a rank, max_seq_length 128,
--to_static true) on the real OCNLI train.3k sample, for --steps optimizer steps: once as one
process with all the cores (OMP_NUM_THREADS = cores), once as two ranks with half each (the
suite's default split under paddle.distributed.launch; gloo all-reduces the gradients). Each
row is the best of --repeats runs; train examples/s come from the results record (all ranks
together), peak RSS from each process's /proc status. A third row runs the two ranks with
all the cores each (oversubscribed), to show why the default halves them, and a fourth is one
process with half the cores: two of those side by side, with no gradients to exchange, are what
two ranks could reach at best on this machine.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # for helpers.py
import cluebench  # noqa: E402,F401
from bench_models import BENCH_MODELS  # noqa: E402
from cluebench import results  # noqa: E402
from cluebench.fileio import read_jsonl  # noqa: E402
from helpers import ROOT, save_random_bert  # noqa: E402

# Run in each worker (as sitecustomize): its peak RSS goes to a file when it exits.
PEAK_HOOK = """import atexit, os
def _peak():
    with open('/proc/self/status') as f:
        kb = next(int(l.split()[1]) for l in f if l.startswith('VmHWM'))
    with open(os.path.join(os.environ['BENCH_PEAK_DIR'], str(os.getpid())), 'w') as f:
        f.write(str(kb))
if __import__('sys').argv[0].endswith('run_clue_classifier.py'):
    atexit.register(_peak)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps of each run")
    parser.add_argument("--repeats", type=int, default=2)
    opts = parser.parse_args()
    clue_data = os.environ.get("CLUE_DATA_DIR") or sys.exit("set CLUE_DATA_DIR")
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "ocnli_public")
        os.makedirs(data)
        source = os.path.join(clue_data, "ocnli_public")
        train = [r for _, r in read_jsonl(os.path.join(source, "train.3k.json"))]
        dev = [r for _, r in read_jsonl(os.path.join(source, "dev.json"))][:200]  # one evaluation at the end
        for name, rows in (("train.50k.json", train), ("dev.json", dev)):
            with open(os.path.join(data, name), "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        model = save_random_bert(os.path.join(work, "model"), clue_data, **BENCH_MODELS["small"])
        hook = os.path.join(work, "hook")
        os.makedirs(hook)
        with open(os.path.join(hook, "sitecustomize.py"), "w") as f:
            f.write(PEAK_HOOK)

        def run(ranks, threads, index):
            out, peaks = os.path.join(work, f"out{index}"), os.path.join(work, f"peak{index}")
            os.makedirs(peaks)
            env = dict(
                os.environ,
                OMP_NUM_THREADS=str(threads),
                BENCH_PEAK_DIR=peaks,
                PYTHONPATH=os.pathsep.join([hook, os.environ.get("PYTHONPATH", "")]),
            )
            launch = (
                [
                    "-m",
                    "paddle.distributed.launch",
                    "--nproc_per_node",
                    str(ranks),
                    "--log_dir",
                    os.path.join(work, f"logs{index}"),
                ]
                if ranks > 1
                else []
            )
            subprocess.run(
                [
                    sys.executable,
                    *launch,
                    os.path.join(ROOT, "classification", "run_clue_classifier.py"),
                    "--task_name",
                    "ocnli",
                    "--model_name_or_path",
                    model,
                    "--data_dir",
                    data,
                    "--device",
                    "cpu",
                    "--do_train",
                    "--output_dir",
                    out,
                    "--max_steps",
                    str(opts.steps),
                    "--logging_steps",
                    "10",
                    "--save_steps",
                    str(opts.steps),
                    "--learning_rate",
                    "2e-5",
                ],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            record = results.read_record(os.path.join(out, results.FILENAME))
            peak = max(int(open(os.path.join(peaks, p)).read()) for p in os.listdir(peaks)) / 1024
            return record["throughput"]["train_examples_per_s"], peak

        rows, index = [], 0
        for label, ranks, threads in (
            ("1 process", 1, cores),
            ("2 ranks (default)", 2, max(1, cores // 2)),
            ("2 ranks, oversubscribed", 2, cores),
            ("1 process, half the cores", 1, max(1, cores // 2)),
        ):
            best = None
            for _ in range(opts.repeats):
                index += 1
                speed, peak = run(ranks, threads, index)
                print(f"{label}: {speed:.1f} train ex/s, peak RSS {peak:.0f} MiB a process", file=sys.stderr)
                best = max(best or (0, 0), (speed, peak))
            rows.append((label, ranks, threads, *best))
    base = rows[0][3]
    print(
        f"\nOCNLI train.3k, 4-layer 312-hidden BERT, batch 32 a rank, {opts.steps} optimizer steps, "
        f"best of {opts.repeats}, {cores} cores\n"
    )
    print("| run | ranks | threads a rank | train ex/s | vs 1 process | peak RSS a process (MiB) |")
    print("|---|---|---|---|---|---|")
    for label, ranks, threads, speed, peak in rows:
        print(f"| {label} | {ranks} | {threads} | {speed:.1f} | {speed / base:.2f}x | {peak:.0f} |")
    half = rows[-1][3]
    print(
        f"\nTwo ranks at best (2 x one process with half the cores): {2 * half:.1f} train ex/s, "
        f"{2 * half / base:.2f}x one process; the two ranks reach {rows[1][3] / (2 * half):.0%} of that."
    )


if __name__ == "__main__":
    main()
