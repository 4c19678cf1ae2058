"""A few minutes on your own host before a day-long grid: does this Paddle build run here, are the cards the
grid reads the cards its jobs get, do the scripts train the same with and without --to_static, do two ranks
stay in step, does a stopped job resume, and what does a job take of the host and of a card?

    python -m cluebench.check MODEL [--data_dir DIR] [--use_amp bf16]     (or grid_search.py MODEL --check)

prints one PASS / FAIL / SKIP row a question, with its reason, and exits 1 when a row failed. Every row runs
the suite's own scripts (or Paddle's launcher) in child processes with a time limit, on one card (the first
visible), on the data in --data_dir or else synthetic data in the official layout. On a CPU (--device cpu)
the rows that need a GPU say SKIP and why."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import psutil

from . import results, synthetic
from .grid import footprint, processes, scheduler
from .grid.scheduler import GIB

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSIFIER = os.path.join(ROOT, "classification", "run_clue_classifier.py")
CMRC = os.path.join(ROOT, "mrc", "run_cmrc2018.py")
PROBE = os.path.join(ROOT, "cluebench", "train", "rank_probe.py")
LIMIT_S = 600  # one child process at most
LOSS = re.compile(r"global step (\d+)/\d+.*?loss: ([0-9.]+)")
AMP_TOLERANCE = 0.05  # mean absolute difference of the logged losses from fp32's, over the steps
SHARING = (1, 2, 4)  # jobs on one card
JOB = scheduler.Job("tnews", 2e-5, 16, 1, max_seq_length=128)  # the classification job's shape, for the claims


class Failed(Exception):
    """A row's FAIL, with its reason."""


class Skipped(Exception):
    """A row's SKIP, with its reason."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m cluebench.check", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("model", help="a PaddleNLP model name or a local model directory")
    p.add_argument("--data_dir", help="CLUE data (<task>_public/ folders of TNEWS and CMRC2018); default: synthetic")
    p.add_argument("--device", choices=("gpu", "cpu"), default="gpu")
    p.add_argument("--use_amp", choices=("fp16", "bf16"), help="also run the short job in this precision")
    p.add_argument("--steps", type=int, default=20, help="optimizer steps of each short job (at least 4)")
    p.add_argument("--workdir", help="where the jobs write (default: a temporary folder, removed after)")
    args = p.parse_args(argv)
    if args.steps < 4:
        p.error("--steps: at least 4 (the resume row stops a job half-way)")
    if args.workdir and os.path.exists(args.workdir) and not os.path.isdir(args.workdir):
        p.error(f"--workdir {args.workdir}: not a directory")
    return args


class Host:
    """Runs the check's short jobs, always with the same flags, so that their numbers compare."""

    def __init__(self, args, work):
        self.args, self.work = args, work
        self.data = args.data_dir or self._synthetic()
        self.runs, self.started = 0, []
        self.reference = None  # the classification job with --to_static true: what resume and AMP compare to
        self.peak_host_gib = None
        self.peak_card_gib = None

    def _synthetic(self):
        data = os.path.join(self.work, "data")
        synthetic.write_task(data, "tnews", n_train=16 * self.args.steps, n_dev=32)
        synthetic.write_cmrc2018(data, n_train=8 * self.args.steps, n_dev=12)
        return data

    def env(self, cards=1):
        """A child's environment: on a GPU, the first `cards` visible cards, in the user's terms."""
        env = dict(os.environ, PYTHONUNBUFFERED="1", CUDA_DEVICE_ORDER="PCI_BUS_ID")
        if self.args.device == "gpu" and cards:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(card.name for card in self.cards()[:cards])
        return env

    def cards(self):
        """The visible cards, in PCI bus order (cards.visible_cards)."""
        import pynvml

        from .grid import cards

        try:
            pynvml.nvmlInit()
            return cards.visible_cards(pynvml)
        except (pynvml.NVMLError, cards.CardError) as e:
            raise Failed(f"NVML: {e}") from None

    def argv(self, script, out, *extra):
        common = [
            "--model_name_or_path",
            self.args.model,
            "--data_dir",
            self.data,
            "--output_dir",
            out,
            "--device",
            self.args.device,
            "--do_train",
            "--max_steps",
            str(self.args.steps),
            "--logging_steps",
            "1",
            "--save_best_model",
            "false",
            "--seed",
            "42",
        ]
        if script == CLASSIFIER:
            every = str(self.args.steps // 2)  # two evaluations: the resume row stops between them
            return [
                script,
                "--task_name",
                "tnews",
                "--batch_size",
                str(JOB.batch_size),
                "--max_seq_length",
                str(JOB.max_seq_length),
                "--save_steps",
                every,
                *common,
                *extra,
            ]
        return [
            script,
            "--batch_size",
            "8",
            "--gradient_accumulation_steps",
            "1",
            "--max_seq_length",
            "256",
            *common,
            *extra,
        ]

    def start(self, argv, cards=1):
        """A child with its job token (processes.start), so that a stop reaches its ranks too."""
        self.runs += 1
        log = open(os.path.join(self.work, f"{self.runs:02d}.log"), "w+", encoding="utf-8")
        proc = processes.start([sys.executable, *argv], self.env(cards), ROOT, output=log)
        self.started.append(proc)
        return proc, log

    def job(self, script, name, *extra):
        """(record, {step: loss}) of one short job on the first card; Failed if it does not end well."""
        return self.jobs(script, name, 1, *extra)[0]

    def jobs(self, script, name, k, *extra):
        """k copies of a short job side by side, on the same card: [(record, {step: loss})]."""
        before = self.card_used_gib()  # the card's memory before the jobs: what they add is theirs
        started = [
            (
                self.start(self.argv(script, os.path.join(self.work, f"{name}-{i}"), *extra)),
                os.path.join(self.work, f"{name}-{i}"),
            )
            for i in range(k)
        ]
        procs = [proc for (proc, _), _ in started]
        host_gib, card_gib = watch(procs, None if before is None else lambda: self.card_added_gib(procs, before))
        if k == 1:
            self.peak_host_gib = max(self.peak_host_gib or 0.0, host_gib)
            if card_gib is not None:
                self.peak_card_gib = max(self.peak_card_gib or 0.0, card_gib)
        return [finish(proc, log, out) for (proc, log), out in started]

    def card_added_gib(self, procs, before):
        """What the processes hold of the first card: NVML's memory of each of their processes, or, where NVML
        shows no processes (in some containers), the card's used memory above `before`."""
        import pynvml

        pids = {pid for proc in procs for pid in processes.job_processes(proc)}
        try:
            running = pynvml.nvmlDeviceGetComputeRunningProcesses(self.cards()[0].handle)
        except pynvml.NVMLError:
            running = []
        own = sum(p.usedGpuMemory or 0 for p in running if p.pid in pids) / GIB
        return own if own else self.card_used_gib() - before

    def card_used_gib(self):
        """NVML's used memory of the first visible card (None on a CPU)."""
        if self.args.device == "cpu":
            return None
        import pynvml

        return pynvml.nvmlDeviceGetMemoryInfo(self.cards()[0].handle).used / GIB


def watch(procs, card_added=None, until=None):
    """Wait for the processes (at most LIMIT_S, then kill them), sampling memory: (peak host GiB of their
    trees together, peak of card_added() GiB, or None without it). until(): stop waiting when it says so
    (looked at every 20 ms instead of 200)."""
    host, card, deadline = 0.0, None, time.monotonic() + LIMIT_S
    while any(p.poll() is None for p in procs):
        if time.monotonic() > deadline:
            processes.stop_all(procs, grace=0)
            raise Failed(f"no end after {LIMIT_S} s; killed")
        total = 0
        for pid in {pid for p in procs for pid in processes.job_processes(p)}:
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.Error:  # ended meanwhile
                pass
        host = max(host, total / GIB)
        if card_added is not None:
            card = max(card or 0.0, card_added())
        if until is not None and until():
            break
        time.sleep(0.2 if until is None else 0.02)
    return host, card


def finish(proc, log, out):
    proc.wait()
    log.seek(0)
    text = log.read()
    log.close()
    record = results.read_record(os.path.join(out, results.FILENAME))
    if proc.returncode != 0 or record is None:
        raise Failed(f"{os.path.basename(out)}: exit {proc.returncode}: {reason(text)}")
    return record, {int(s): float(v) for s, v in LOSS.findall(text)}


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def reason(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return next((line for line in lines if scheduler.ERROR_LINE.match(line)), lines[-1] if lines else "no output")[:240]


def steps_per_s(record):
    """Optimizer steps a second of training (evaluations and start-up left out), on this rank."""
    batch = record["hyperparameters"]["batch_size"]
    return record["throughput"]["train_examples_per_s"] / batch / record["throughput"].get("world_size", 1)


def python(code, host):
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=LIMIT_S, env=host.env(cards=0), cwd=ROOT
    )
    if proc.returncode != 0:
        raise Failed(reason(proc.stderr or proc.stdout))
    return proc.stdout


# ------------------------------------------------------------------ the rows
def row_build(host):
    out = python(
        "import paddle; paddle.utils.run_check(); v = paddle.version; "
        "n = paddle.device.cuda.device_count() if paddle.is_compiled_with_cuda() else 0; "
        "cc = '%d.%d' % tuple(paddle.device.cuda.get_device_capability()) if n else '-'; "
        "print('BUILD', paddle.__version__, v.cuda(), v.cudnn(), n, cc, "
        "bool(n) and paddle.amp.is_bfloat16_supported())",
        host,
    )
    version, cuda, cudnn, count, capability, bf16 = re.search(r"^BUILD (.*)$", out, re.M).group(1).split()
    if host.args.device == "cpu":
        return f"Paddle {version}: run_check passes on the CPU"
    if count == "0":
        build = "a CPU build" if cuda == "False" else f"CUDA {cuda}"
        raise Failed(
            f"Paddle {version} ({build}) sees no GPU: install Paddle's GPU build (README, Install), "
            "or check with --device cpu"
        )
    return (
        f"Paddle {version}, CUDA {cuda}, cuDNN {cudnn}; {count} cards, compute capability {capability}, "
        f"bf16 {'yes' if bf16 == 'True' else 'no'}"
    )


def row_cards(host):
    if host.args.device == "cpu":
        raise Skipped("--device cpu")
    import pynvml

    from .grid import cards

    seen = host.cards()
    out = python(
        "import paddle\nfor i in range(paddle.device.cuda.device_count()):\n"
        "    p = paddle.device.cuda.get_device_properties(i)\n"
        "    print('CARD', i, p.total_memory, p.name.replace(' ', '_'))",
        host,
    )
    cuda = [line.split()[1:] for line in out.splitlines() if line.startswith("CARD ")]
    if len(cuda) != len(seen):
        raise Failed(f"NVML shows {len(seen)} cards, Paddle {len(cuda)}")
    for card, (ordinal, memory, name) in zip(seen, cuda):
        nvml_name = cards.nvml_text(pynvml.nvmlDeviceGetName(card.handle)).replace(" ", "_")
        nvml_gib = pynvml.nvmlDeviceGetMemoryInfo(card.handle).total / GIB
        if name != nvml_name or abs(int(memory) / GIB - nvml_gib) > 0.02 * nvml_gib:
            raise Failed(
                f"CUDA {ordinal} is {name} ({int(memory) / GIB:.1f} GiB) but NVML's card in that place, "
                f"{card.bus_id}, is {nvml_name} ({nvml_gib:.1f} GiB)"
            )
    return f"{len(seen)} cards, the same in NVML and CUDA, in PCI bus order: " + ", ".join(c.bus_id for c in seen)


def row_job(host, script, name):
    static, losses = host.job(script, f"{name}-static", "--to_static", "true")
    eager, eager_losses = host.job(script, f"{name}-eager", "--to_static", "false")
    if not losses or losses != eager_losses:
        step = next((s for s in sorted(losses) if losses[s] != eager_losses.get(s)), None)
        raise Failed(f"losses differ at step {step}: {losses.get(step)} static, {eager_losses.get(step)} eager")
    if script == CLASSIFIER:
        host.reference = (static, losses)
    return (
        f"{len(losses)} steps, the same losses with --to_static true and false; "
        f"{steps_per_s(static):.2f} against {steps_per_s(eager):.2f} steps/s"
    )


def row_classification(host):
    return row_job(host, CLASSIFIER, "tnews")


def row_reading(host):
    return row_job(host, CMRC, "cmrc2018")


def row_ranks(host):
    if host.args.device == "gpu" and len(host.cards()) < 2:
        raise Skipped("fewer than two cards visible")
    logs = os.path.join(host.work, "rank-logs")
    # as the grid runs a job of two cards: those two visible, one rank each
    proc, log = host.start(
        ["-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", logs, PROBE, host.args.device],
        cards=2,
    )
    watch([proc])
    log.seek(0)
    text = log.read()
    for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
        text += read(os.path.join(logs, name))
    log.close()
    found = re.search(r"^RANKS (AGREE|DIFFER) (.*)$", text, re.M)
    if proc.returncode != 0 or not found:
        raise Failed(f"paddle.distributed.launch: exit {proc.returncode}: {reason(text)}")
    if found.group(1) == "DIFFER":
        raise Failed(f"two ranks end with different weights ({found.group(2)}): the gradient sync is broken")
    return "two ranks through paddle.distributed.launch end with the same weights after 5 steps"


def row_memory(host):
    if host.peak_host_gib is None:
        raise Skipped("no short job ended")
    shape, warning = footprint.model_shape(host.args.model)
    host_claim = footprint.host_gib(shape)
    parts = [f"host {host.peak_host_gib:.2f} GiB at peak, {host_claim:.2f} claimed"]
    over = host.peak_host_gib > host_claim
    if host.peak_card_gib is not None:
        card_claim = footprint.gpu_gib(shape, JOB)
        parts.append(f"card {host.peak_card_gib:.2f} GiB, {card_claim:.2f} claimed (TNEWS, batch 16, length 128)")
        over |= host.peak_card_gib > card_claim
    detail = "; ".join(parts) + (f" ({warning})" if warning else "")
    if over:
        raise Failed(detail + ": the grid would put too much on this host; lower --max_jobs_per_gpu")
    return detail


def row_sharing(host):
    if host.args.device == "cpu":
        raise Skipped("--device cpu: there --slots says how many jobs run")
    rates = {}
    for k in SHARING:
        rates[k] = sum(
            steps_per_s(record) for record, _ in host.jobs(CLASSIFIER, f"share{k}", k, "--to_static", "true")
        )
    best = max(rates, key=lambda k: rates[k] / (1.1 if k > 1 else 1.0))  # more jobs must gain 10% to be worth it
    return (
        ", ".join(f"{k} a card: {rates[k]:.2f} steps/s in all" for k in SHARING)
        + f"; recommended --max_jobs_per_gpu {best}"
    )


def row_resume(host):
    if host.reference is None:
        raise Skipped("the classification job did not end")
    reference = host.reference[0]
    out = os.path.join(host.work, "tnews-stopped")
    argv = host.argv(CLASSIFIER, out, "--to_static", "true")
    proc, log = host.start(argv)

    def trained():  # stopped as soon as it has taken a step: the most of the run left to go wrong
        return LOSS.search(read(log.name)) is not None

    watch([proc], until=trained)
    if proc.poll() is not None:
        raise Failed(f"the job ended before it could be stopped (exit {proc.returncode}); try more --steps")
    processes.stop(proc, grace=LIMIT_S)  # SIGTERM: the job writes its resume checkpoint and ends
    proc.wait()
    log.close()
    stopped = re.search(r"SIGTERM: stopped at step (\d+)", read(log.name))
    if proc.returncode != 143 or not stopped:
        raise Failed(
            f"SIGTERM: exit {proc.returncode}, not 143 with a resume checkpoint written: {reason(read(log.name))}"
        )
    proc, log = host.start(argv)
    watch([proc])
    again, _ = finish(proc, log, out)
    resumed = re.search(r"resuming from \S+: step (\d+)", read(log.name))
    if not resumed or resumed.group(1) != stopped.group(1):
        raise Failed(f"stopped at step {stopped.group(1)}, but the rerun did not resume from there")
    same = again["best"] == reference["best"] and [(h["step"], h["metrics"]) for h in again["history"]] == [
        (h["step"], h["metrics"]) for h in reference["history"]
    ]
    if not same:
        raise Failed(
            f"resumed run ends with best {again['best']['value']} at step {again['best']['step']}, "
            f"the uninterrupted one with {reference['best']['value']} at step {reference['best']['step']}"
        )
    return (
        f"stopped by SIGTERM at step {stopped.group(1)} of {host.args.steps}, resumed from it: the same best "
        "result and evaluations as without the stop"
    )


def row_amp(host):
    if host.args.device == "cpu":
        raise Skipped("--device cpu: mixed precision needs a GPU")
    if not host.args.use_amp:
        raise Skipped("pass --use_amp fp16 or bf16 to compare it with fp32")
    if host.reference is None:
        raise Skipped("the fp32 classification job did not end")
    fp32, fp32_losses = host.reference
    amp, losses = host.job(
        CLASSIFIER, f"tnews-{host.args.use_amp}", "--to_static", "true", "--use_amp", host.args.use_amp
    )
    gap = sum(abs(losses[s] - fp32_losses[s]) for s in fp32_losses) / len(fp32_losses)
    detail = (
        f"mean loss difference {gap:.4f} from fp32 over {len(fp32_losses)} steps (tolerance {AMP_TOLERANCE}); "
        f"{steps_per_s(amp) / steps_per_s(fp32):.2f}x fp32's steps/s"
    )
    if gap > AMP_TOLERANCE:
        raise Failed(detail)
    return detail


ROWS = [
    ("Paddle build", row_build),
    ("NVML against CUDA", row_cards),
    ("classification job", row_classification),
    ("reading-comprehension job", row_reading),
    ("two ranks", row_ranks),
    ("memory against the claims", row_memory),
    ("jobs sharing a card", row_sharing),
    ("stop and resume", row_resume),
    ("mixed precision", row_amp),
]


def main(argv=None):
    args = parse_args(argv)
    work = args.workdir or tempfile.mkdtemp(prefix="cluebench-check-")
    os.makedirs(work, exist_ok=True)
    started, table, host = time.time(), [], None
    try:
        host = Host(args, work)
        for number, (name, row) in enumerate(ROWS, 1):
            print(f"check {number}/{len(ROWS)}: {name} ...", flush=True)
            tic = time.time()
            try:
                status, detail = "PASS", row(host)
            except Skipped as e:
                status, detail = "SKIP", str(e)
            except Failed as e:
                status, detail = "FAIL", str(e)
            except Exception as e:  # noqa: BLE001  a row that breaks is that row's FAIL, not the end of the check
                status, detail = "FAIL", f"{type(e).__name__}: {e}"
            table.append((name, status, detail))
            print(f"check {number}/{len(ROWS)}: {name}: {status} ({time.time() - tic:.0f} s)", flush=True)
    except KeyboardInterrupt:
        print("check: interrupted; no job of it is left running", file=sys.stderr)
        return 130
    finally:  # a Ctrl-C leaves no job of the check running
        if host is not None:
            processes.stop_all([p for p in host.started if p.poll() is None], grace=5)
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    width = max(len(name) for name, _, _ in table)
    print(f"\n{'check':<{width}}  result  why")
    for name, status, detail in table:
        print(f"{name:<{width}}  {status:<6}  {detail}")
    failed = [name for name, status, _ in table if status == "FAIL"]
    print(
        f"\n{len(table) - len(failed)} of {len(table)} rows did not fail, in {time.time() - started:.0f} s"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
