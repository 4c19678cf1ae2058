"""The run skeleton of the four argparse scripts. A script supplies a TaskRun (its features, loss,
evaluation and prediction writer); run() owns the rest, in this order:

    banner, flag checks, device, ranks, seed -> model -> every split read and checked (test sets first)
    -> output folder claimed -> training with dev evaluations, best weights kept (resumable)
    -> rank 0: --do_eval, predictions with the best weights, results record, closing lines.
"""

import os
import time

import numpy as np
import paddle
from paddlenlp.utils.log import logger

from .. import results
from ..fileio import DataError, atomic_save_pretrained
from . import flags, loop, precision, provenance, resume, setup, speedups
from .precision import Precision


class TaskRun:
    """What one script knows about its task. Subclasses set the attributes and the methods below."""

    script = ""  # e.g. "run_c3.py": in the record and the resume fingerprint
    task = ""
    key = "acc"  # the metric the best evaluation is chosen by
    summary = "best dev"  # the summary line's words before the value
    do_flags = (flags.TRAIN, flags.PREDICT)  # the script's --do_ flags (the classifier's add flags.EVAL)
    eval_steps_flag = None  # the flag giving the steps between evaluations; None: after every epoch
    zero_steps_ok = True  # --max_steps 0: build and check the features, take no step (the MRC warm-up)
    zero_metrics = {"acc": 0.0}  # the best_result line of a run that took no step
    log_template = ""  # train_loop's line every --logging_steps
    unit = "examples"  # what a feature is, for the line that counts them
    choices = None  # inputs are [batch, length], or [batch, choices, length] for a multiple-choice model
    precision = Precision()  # run() sets the run's (--use_amp)

    def __init__(self, args):
        self.args = args

    def asked(self, do_flag):
        """Whether the script has this --do_ flag (do_flags) and it was given."""
        return do_flag in self.do_flags and getattr(self.args, do_flag)

    def check(self, rank):
        """More checks (and set-up) before the model is loaded; the common flags are checked already."""

    def load_model(self):
        """(tokenizer, model), checked against the flags (setup.load_pretrained)."""
        raise NotImplementedError

    def prediction_splits(self):
        """[(test split, leaderboard file name)] present in the data."""
        raise NotImplementedError

    def read(self, split, tokenizer, world_size):
        """(examples, features) of a split, checked; features support len()."""
        raise NotImplementedError

    def split_files(self, split):
        """The files of a split: the resume fingerprint hashes train and dev, the record every file read."""
        raise NotImplementedError

    def train_collate(self, features, tokenizer):
        """indices -> numpy batch of training features, labels included."""
        raise NotImplementedError

    compute_loss = staticmethod(loop.cross_entropy_loss)

    def evaluate(self, model, examples, features, tokenizer):
        """(metrics in percent, dev loss or None) on the dev split; logs the script's eval lines."""
        raise NotImplementedError

    def predict(self, model, split, examples, features, tokenizer, path):
        """Write the leaderboard file of one test split to path (atomically) and log it."""
        raise NotImplementedError

    def data_counts(self, splits):
        """The record's "data": counts of what was trained and evaluated on."""
        raise NotImplementedError


def forward_sorted(model, lengths, batch_size, collate, per_token=False, autocast=Precision().autocast):
    """The model's outputs for every feature, in feature order, computed in eval mode on length-sorted
    batches (little padding): one array [features, ...] per output, or with per_token a list of
    per-feature arrays cut to each feature's length (question answering's start and end logits).
    collate(indices) -> numpy batch with input_ids and token_type_ids; autocast: the run's Precision.autocast
    (outputs come back as fp32 arrays whatever it computed in)."""
    outputs = None
    model.eval()
    with paddle.no_grad():
        for index in loop.length_sorted_batches(lengths, batch_size):
            batch = collate(index)
            with autocast():
                out = model(
                    input_ids=paddle.to_tensor(batch["input_ids"]),
                    token_type_ids=paddle.to_tensor(batch["token_type_ids"]),
                )
            arrays = [
                (o if o.dtype == paddle.float32 else o.astype("float32")).numpy()
                for o in (out if isinstance(out, (tuple, list)) else [out])
            ]
            if outputs is None:
                outputs = [[None] * len(lengths) for _ in arrays]
            for store, array in zip(outputs, arrays):
                for row, i in enumerate(index):
                    store[i] = array[row, : lengths[i]] if per_token else array[row]
    model.train()
    outputs = outputs if per_token else [np.stack(o) for o in outputs]
    return outputs if len(outputs) > 1 else outputs[0]


def read_splits(args, task, tokenizer, rank, world_size):
    """Every split the run needs, read and checked before the first training step: {split: (examples,
    features)}. Test splits first (rank 0 alone predicts), so that a bad test file is found before the
    train features are built; then train and dev with --do_train, dev with --do_eval."""
    splits = {}
    if args.do_predict and rank == 0:
        for split, _ in task.prediction_splits():
            splits[split] = task.read(split, tokenizer, 1)
    wanted = ("train", "dev") if args.do_train else ("dev",) if task.asked(flags.EVAL) else ()
    for split in wanted:
        splits[split] = task.read(split, tokenizer, world_size)
    return splits


def largest_token_id(features):
    """The largest input id of a split's features (-1 if none): a flat column of MRC features, or the
    classification features' lists."""
    columns = getattr(features, "columns", None)
    if columns is not None:
        values = columns.get("input_ids.values", columns.get("input_ids"))  # ragged, or one row per feature
        return int(values.max()) if values is not None and values.size else -1
    return max((max(f["input_ids"], default=-1) for f in features), default=-1)


def check_token_ids(splits, vocab_size, model_path):
    """A DataError naming the model before step one when a feature holds an id past its embedding table
    (a tokenizer whose added tokens the model lacks): the lookup would fail mid-run, or read garbage on a GPU."""
    if not vocab_size:
        return
    for split, (_, features) in splits.items():
        largest = largest_token_id(features)
        if largest >= vocab_size:
            raise DataError(
                model_path,
                f"the {split} features hold token id {largest}, but the model's embedding "
                f"table has {vocab_size} rows (vocab_size in its config)",
            )


def fit(args, task, model, tokenizer, splits, rank, world_size):
    """Train, evaluating on dev every eval_steps_flag steps (and at the last) or after every epoch on rank 0,
    resuming from the checkpoint a killed run of the same command left (resume.py). Returns (model holding
    the best weights, tracker, stats); --max_steps 0 trains and evaluates nothing."""
    train_feats = splits["train"][1]
    dev_examples, dev_feats = splits["dev"]
    logger.info(f"{task.task}: {len(train_feats)} train and {len(dev_feats)} dev {task.unit}")
    gas = args.gradient_accumulation_steps
    loader = loop.shuffled_batches(len(train_feats), args.batch_size // gas, task.train_collate(train_feats, tokenizer))
    total_steps, epochs = loop.plan_steps(
        len(loader), gas, args.num_train_epochs, args.max_steps, zero_means_no_steps=task.zero_steps_ok
    )
    scheduler, optimizer = loop.build_optimizer(model, args, total_steps)
    if world_size > 1:
        model = paddle.DataParallel(model)
    tracker = loop.BestTracker(task.key, keep_state=args.do_predict or task.asked(flags.EVAL))
    scalars = Scalars(args.logdir if rank == 0 else None)
    checkpoint = resume.Checkpointer(
        args,
        lambda: resume.fingerprint(
            task.script, task.task, args, task.split_files("train") + task.split_files("dev"), world_size
        ),
        rank=rank,
        world_size=world_size,
    )

    def on_evaluate(step, epoch):
        if rank != 0:
            return
        tic = time.time()
        metrics, loss = task.evaluate(loop.unwrap(model), dev_examples, dev_feats, tokenizer)
        tracker.eval_time_s += time.time() - tic
        scalars.add("eval", dict(metrics, loss=loss), step)
        if tracker.update(model, metrics, step, epoch, loss) and args.save_best_model:
            atomic_save_pretrained(args.output_dir, loop.unwrap(model), tokenizer)

    with checkpoint, scalars:
        stats = loop.train_loop(
            model,
            loader,
            task.compute_loss,
            optimizer,
            scheduler,
            total_steps=total_steps,
            epochs=epochs,
            gas=gas,
            logging_steps=args.logging_steps,
            log_template=task.log_template,
            evaluate=on_evaluate,
            eval_steps=getattr(args, task.eval_steps_flag) if task.eval_steps_flag else None,
            rank=rank,
            seed=None if resume.positions_saved() else args.seed,
            checkpoint=checkpoint,
            progress=checkpoint.restore(model, optimizer, scheduler, tracker, task.precision),
            on_log=lambda step, loss, lr: scalars.add("train", {"loss": loss, "lr": lr}, step),
            precision=task.precision,
        )
    model = loop.unwrap(model)
    tracker.restore_best(model)
    return model, tracker, dict(stats, checkpoint=checkpoint)


class Scalars:
    """Train loss, learning rate and dev metrics as VisualDL scalars (as PaddleNLP's Trainer logs them), when
    --logdir is given; otherwise nothing. A context manager: the writer is closed at the end."""

    def __init__(self, logdir):
        self.writer = None
        if logdir:
            from visualdl import LogWriter  # imported only when asked for: it takes a second

            self.writer = LogWriter(logdir=logdir)

    def add(self, group, values, step):
        if self.writer is not None:
            for name, value in values.items():
                if value is not None:
                    self.writer.add_scalar(tag=f"{group}/{name}", value=float(value), step=step)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.writer is not None:
            self.writer.close()


def predict(args, task, model, tokenizer, splits):
    """Every test split's leaderboard file in the output folder: (paths, {"predict_examples", "predict_time_s"})."""
    written, examples, tic = [], 0, time.time()
    for split, name in task.prediction_splits():
        path = os.path.join(args.output_dir, name)
        task.predict(model, split, *splits[split], tokenizer, path)
        written.append(path)
        examples += len(splits[split][0])
    return written, {"predict_examples": examples, "predict_time_s": round(time.time() - tic, 3)}


def finish(args, task, tracker, stats, splits, predictions, world_size):
    """Rank 0: write the record, log the summary, end with the best_result line. predictions: predict()'s."""
    if tracker is None:
        return
    if tracker.best is None:  # --max_steps 0: features built and cached, nothing trained
        logger.info("no optimizer step was taken (--max_steps 0): features are built and cached")
        logger.info(results.best_result_line(task.zero_metrics))
        return
    n_dev = len(splits["dev"][1])
    record = results.make_record(
        task=task.task,
        model=args.model_name_or_path,
        script=task.script,
        hyperparameters=vars(args),
        best=tracker.best,
        history=tracker.history,
        wall_time_s=stats["checkpoint"].elapsed(),
        throughput={
            "train_examples_per_s": stats["examples"] * world_size / max(stats["train_time_s"], 1e-9),
            "eval_examples_per_s": len(tracker.history) * n_dev / max(tracker.eval_time_s, 1e-9),
            "optimizer_steps": stats["steps"],
            "world_size": world_size,
            **predictions[1],
        },
        data=task.data_counts(splits),
        made_by=provenance.provenance([f for split in splits for f in task.split_files(split)], world_size),
    )
    record["predictions"] = predictions[0]
    loop.write_record(args, record, task.summary)
    stats["checkpoint"].remove()


def run(args, task):
    """The whole run of a script, from its parsed flags to its closing lines."""
    setup.print_arguments(args)
    flags.check_training_flags(args, task.do_flags, zero_steps_ok=task.zero_steps_ok)
    setup.set_device(args.device)
    precision.check(args)
    task.precision = Precision.of(args)
    rank, world_size = setup.init_distributed()
    task.check(rank)
    setup.set_seed(args.seed)
    tokenizer, model = task.load_model()
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    if args.to_static:
        model = speedups.static_forward(model, tokenizer.cls_token_id, task.choices, task.precision.autocast)
    splits = read_splits(args, task, tokenizer, rank, world_size)
    check_token_ids(splits, vocab_size, args.model_name_or_path)
    # checked, now ours: nothing was written before this point
    with setup.claim_output_dir(args.output_dir, results.record_path(args), rank=rank, break_lock=args.break_lock):
        tracker = stats = None
        if args.do_train:  # afterwards `model` holds the best dev weights, not the last ones
            model, tracker, stats = fit(args, task, model, tokenizer, splits, rank, world_size)
        if rank != 0:
            return
        if task.asked(flags.EVAL):
            task.evaluate(model, *splits["dev"], tokenizer)
        untrained = tracker is not None and tracker.best is None  # --max_steps 0: the features were the point
        written = predict(args, task, model, tokenizer, splits) if args.do_predict and not untrained else ([], {})
        finish(args, task, tracker, stats, splits, written, world_size)
