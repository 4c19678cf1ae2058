"""Before a grid: check (or download) the data and the model, and build the reading-comprehension
feature caches with the very keys the grid's runs use, without a training step.

    python warmup_dataset_and_model.py MODEL [--data_dir DIR] [--device cpu] [--tasks ...]

What stops it (missing or bad data, a model that does not load, a failed download) is said in one
line, `warmup: error: ...`, with exit status 2, as the training scripts say bad input.
"""

import argparse
import importlib.util
import os
import sys
import tempfile

import cluebench  # noqa: F401  first: it sets up the process before paddle is imported
from cluebench import tasks as registry
from cluebench.fileio import DataError
from cluebench.tasks import reading
from cluebench.train import download, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def fail(message):
    print(f"warmup: error: {message}", file=sys.stderr)
    sys.exit(2)


def check_data(tasks, data_dir):
    """Every train and dev file the grid reads exists (downloading the classification archives if no data_dir)."""
    for task in tasks:
        if task in registry.READING:
            try:
                root = data_dir or reading.download(task)
            except DataError as e:
                fail(str(e))
            paths = [p for split in ("train", "dev") for p in reading.split_files(task, split, root)]
        else:  # read and checked as a run reads them (a download without data_dir)
            try:
                for split in ("train", "dev"):
                    download.load_split(task, split, data_dir)
            except DataError as e:
                fail(str(e))
            continue
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            fail(f"{task}: missing {', '.join(missing)}")


def check_model(model, tasks, device):
    """The device, and the model as the runs load it: weights, vocabulary, and positions enough for the
    longest sequences the grid gives the tasks."""
    from paddlenlp.transformers import AutoModel

    grids = [registry.get(t).grid for t in tasks if registry.get(t).grid]
    longest = max(
        [row[1] for g in grids for row in getattr(g, "settings", ())]
        + [g.max_seq_length for g in grids if hasattr(g, "max_seq_length")]
        + [128]
    )
    try:
        setup.set_device(device)
    except DataError as e:
        fail(str(e))
    try:
        setup.load_pretrained(AutoModel, model, longest)
    except DataError as e:  # a missing folder, a failed download, broken weights or vocabulary
        fail(f"cannot use model {model!r}: {e}")


def build_mrc_caches(task, model, data_dir, device):
    """The task's own script with --max_steps 0: train, dev and test features, keyed as in run_mrc.sh's runs."""
    spec = importlib.util.spec_from_file_location(f"run_{task}", os.path.join(ROOT, "mrc", f"run_{task}.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    max_seq_length = registry.get(task).grid.max_seq_length
    with tempfile.TemporaryDirectory() as out:
        script.main(
            [
                "--model_name_or_path",
                model,
                "--device",
                device,
                "--do_train",
                "--do_predict",
                "--max_steps",
                "0",
                "--max_seq_length",
                str(max_seq_length),
                "--output_dir",
                out,
                "--save_best_model",
                "False",
            ]
            + (["--data_dir", data_dir] if data_dir else [])
        )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--data_dir")
    p.add_argument("--device", default="gpu")
    p.add_argument(
        "--tasks", nargs="+", choices=registry.names(in_grid=True), default=list(registry.names(in_grid=True))
    )
    args = p.parse_args(argv)
    check_data(args.tasks, args.data_dir)
    check_model(args.model, args.tasks, args.device)
    try:
        for task in [t for t in registry.READING if t in args.tasks]:
            build_mrc_caches(task, args.model, args.data_dir, args.device)
    except DataError as e:  # the MRC scripts' own clear errors: bad data or flags found while building
        fail(str(e))
    except SystemExit as e:  # e.g. "error: --device gpu asked for, but no GPU is visible; use --device cpu"
        if isinstance(e.code, str):
            fail(e.code.removeprefix("error: "))
        raise
    print(f"warmup: data, model and feature caches ready for {', '.join(args.tasks)}", flush=True)


if __name__ == "__main__":
    main()
