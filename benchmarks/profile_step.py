"""Where a training step's time goes: Paddle's profiler over the suite's training loop; not run in CI.

    .venv/bin/python benchmarks/profile_step.py                  # the defaults ("after")
    MKL_DEBUG_CPU_TYPE=0 .venv/bin/python benchmarks/profile_step.py --before

A random BERT (tiny: 2 layers, hidden 64; small: 4 layers, hidden 312) over a 21128-token
vocabulary, 15 labels, batches of 32 random ids of length 36, AdamW with the classifier script's
defaults, training.train_loop. --before is upstream's step: the eager model without the CPU
executor flags or speedups.speed_up (run it with MKL_DEBUG_CPU_TYPE=0 for MKL's own code path);
the default is the scripts' --device cpu --to_static true. Prints steps/s (best of 2
runs) and the operators' shares of kernel time (wrappers that contain other operators left out).
"""

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cluebench  # noqa: E402,F401  before paddle
from bench_models import BENCH_MODELS as CONFIGS  # noqa: E402

CONTAINERS = ("GradNode", "RunProgram", "run_program", "pd_op.run_program")


def operator_shares(summary):
    """{operator: share of kernel time} from the profiler's operator table."""
    table = summary[summary.index("Operator Summary") :]
    times = {}
    for line in table.splitlines():
        parts = line.split()
        calls = next((i for i, p in enumerate(parts[:3]) if p.isdigit() and i > 0), None)
        if calls is None or len(parts) < calls + 2 or "/" not in line:
            continue
        name = " ".join(parts[:calls]).replace(" dygraph", "")
        if name.startswith(CONTAINERS) or "Dy2StGradNode" in name:
            continue
        times[name] = times.get(name, 0.0) + float(parts[calls + 1])
    total = sum(times.values())
    return sorted(((n, t / total) for n, t in times.items()), key=lambda kv: -kv[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", action="store_true", help="upstream's step: eager, default executor")
    parser.add_argument("--models", default="tiny,small")
    opts = parser.parse_args()
    from cluebench.train import loop as training, setup as cli, speedups

    import numpy as np
    import paddle
    import paddle.profiler as profiler
    from paddlenlp.transformers import BertConfig, BertForSequenceClassification

    if not opts.before:
        cli.set_device("cpu")
    for name in opts.models.split(","):
        paddle.seed(0)
        model = BertForSequenceClassification(BertConfig(vocab_size=21128, num_labels=15, **CONFIGS[name]))
        if not opts.before:
            speedups.speed_up(model)  # as cli.load_pretrained does
            model = speedups.static_forward(model, token_id=1)
        rng = np.random.RandomState(0)
        steps = 20 if name == "tiny" else 6
        batches = [
            {
                "input_ids": rng.randint(5, 21000, (32, 36)).astype("int64"),
                "token_type_ids": np.zeros((32, 36), "int64"),
                "labels": rng.randint(0, 15, (32,)).astype("int64"),
            }
            for _ in range(steps)
        ]
        hyper = SimpleNamespace(
            learning_rate=1e-4,
            warmup_steps=0,
            warmup_proportion=0.1,
            weight_decay=0.0,
            adam_epsilon=1e-6,
            max_grad_norm=1.0,
        )

        def run():
            scheduler, optimizer = training.build_optimizer(model, hyper, steps)
            loader = training.BatchLoader(list(range(steps)), lambda i: batches[i])
            start = time.perf_counter()
            training.train_loop(
                model,
                loader,
                training.cross_entropy_loss,
                optimizer,
                scheduler,
                total_steps=steps,
                epochs=1,
                gas=1,
                logging_steps=10,
                log_template="",
                evaluate=lambda s, e: None,
                eval_steps=10**9,
                seed=42,
            )
            return time.perf_counter() - start

        run()  # warm-up: builds the programs
        wall = min(run() for _ in range(2))
        with tempfile.TemporaryDirectory() as work:
            cwd = os.getcwd()
            os.chdir(work)  # the profiler leaves a profiler_log folder behind
            prof = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU])
            prof.start()
            run()
            prof.stop()
            text = io.StringIO()
            with contextlib.redirect_stdout(text):
                prof.summary(sorted_by=profiler.SortedKeys.CPUTotal, op_detail=False, thread_sep=False, time_unit="ms")
            del prof  # Paddle 3 allows one profiler at a time: the next model's would be None
            os.chdir(cwd)
        top = operator_shares(text.getvalue())[:8]
        print(
            f"{name} ({'before' if opts.before else 'after'}, paddle {paddle.__version__}, "
            f"MKL_DEBUG_CPU_TYPE={os.environ.get('MKL_DEBUG_CPU_TYPE')}): {steps / wall:.2f} steps/s; "
            + ", ".join(f"{n} {100 * share:.0f}%" for n, share in top)
        )


if __name__ == "__main__":
    main()
