"""CLUE classification on PaddleNLP's Trainer: `--dataset "clue tnews"` as upstream, plus --data_dir.

--do_predict works here (it crashes upstream) and writes the same leaderboard files as
run_clue_classifier.py.
"""

import argparse
import json
import os
import pickletools
import re
import shutil
import stat
import time
from dataclasses import dataclass, field
from typing import Optional

import cluebench  # noqa: F401  first: it sets up the process before paddle is imported
from cluebench import fileio, results
from cluebench.fileio import DataError, check_writable, write_json
from cluebench.tasks import classification as clue
from cluebench.train import download, flags, loop, provenance, resume, setup

import numpy as np
import paddle
from paddlenlp.data import DataCollatorWithPadding
from paddlenlp.trainer import IntervalStrategy, PdArgumentParser, Trainer, TrainerCallback, TrainingArguments, set_seed
from paddlenlp.transformers import AutoModelForSequenceClassification
from paddlenlp.utils.log import logger


@dataclass
class DataArguments:
    dataset: Optional[str] = field(default=None, metadata={"help": 'e.g. "clue tnews": dataset name, then task'})
    data_dir: Optional[str] = field(default=None, metadata={"help": "local files in the official CLUE layout"})
    max_seq_length: int = field(default=128, metadata={"help": "truncation length"})
    results_file: Optional[str] = field(
        default=None, metadata={"help": "results record; default OUTPUT_DIR/clue_results.json"}
    )
    do_lower_case: bool = field(default=False, metadata={"help": "unused; kept for upstream command lines"})
    break_lock: Optional[str] = field(
        default=None, metadata={"help": "HOST: take over OUTPUT_DIR's lock if HOST, known to be gone, holds it"}
    )


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "built-in model name or local directory"})
    config_name: Optional[str] = field(default=None, metadata={"help": "unused; kept for upstream"})
    tokenizer_name: Optional[str] = field(default=None, metadata={"help": "unused; kept for upstream"})
    cache_dir: Optional[str] = field(default=None, metadata={"help": "unused; kept for upstream"})
    export_model_dir: Optional[str] = field(default=None, metadata={"help": "default OUTPUT_DIR/export"})


class RotatingTrainer(Trainer):
    """Checkpoints that say which run made them (RUN_FILE), and rotated: PaddleNLP 2.8.1 rotates them only
    when local_rank == 0, which is -1 in a single process, so --save_total_limit is otherwise ignored."""

    fingerprint = None

    def _save_checkpoint(self, model, metrics=None):
        super()._save_checkpoint(model, metrics=metrics)
        if self.args.should_save:
            write_json(
                os.path.join(self.args.output_dir, f"checkpoint-{self.state.global_step}", RUN_FILE), self.fingerprint
            )
        if self.args.local_rank == -1 and self.args.should_save:
            self._rotate_checkpoints(use_mtime=False, output_dir=self.args.output_dir)


class EvaluateAtLastStep(TrainerCallback):
    """Evaluate and save at the last step as well, as run_clue_classifier.py does: otherwise a run shorter
    than --eval_steps ends with no dev score, no record and no best_result line."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps and args.evaluation_strategy == IntervalStrategy.STEPS:
            control.should_evaluate = True
            control.should_save = args.save_strategy == IntervalStrategy.STEPS
        return control


def task_from(data_args):
    words = (data_args.dataset or "").split()
    try:
        if len(words) != 2 or words[0] != "clue":
            raise ValueError(f'must be "clue TASK" with TASK one of {", ".join(clue.TASKS)}')
        return clue.task_name(words[1])
    except (ValueError, argparse.ArgumentTypeError) as e:
        raise flags.flag_error("dataset", repr(data_args.dataset), str(e)) from None


def length_sorted(features):
    """(features in length order, the order): the Trainer evaluates sequentially, so this pads little."""
    order = np.argsort([len(f["input_ids"]) for f in features], kind="stable")
    return [features[i] for i in order], order


DO_FLAGS = (flags.TRAIN, flags.EVAL, flags.PREDICT)  # TrainingArguments' (its --do_export is no run)
METRICS = ("eval_accuracy", "accuracy", "eval_loss", "loss")  # what compute_metrics and evaluation log


def parse():
    """The three argument groups; PaddleNLP's own refusals (unknown flags, strategies that do not match)
    are one line too."""
    parser = PdArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    try:
        return parser.parse_args_into_dataclasses()
    except ValueError as e:
        raise DataError("arguments", " ".join(str(e).split())) from None


def check_arguments(args, data_args, model_args):
    """Every flag before any work."""
    flags.check_numbers(args, flags.trainer_rules())
    flags.check_something_to_do(args, DO_FLAGS)
    if args.do_train and args.max_steps <= 0 and args.num_train_epochs <= 0:
        raise flags.flag_error(
            "num_train_epochs", args.num_train_epochs, "must be positive to train (or give --max_steps)"
        )
    if args.metric_for_best_model and args.metric_for_best_model not in METRICS:
        raise flags.flag_error(
            "metric_for_best_model", args.metric_for_best_model, f"must be one of {', '.join(METRICS)}"
        )
    flags.check_numbers(data_args, flags.rules_for(["max_seq_length"]))
    if data_args.break_lock is not None:
        try:
            resume.host_name(data_args.break_lock)
        except argparse.ArgumentTypeError as e:
            raise flags.flag_error("break_lock", data_args.break_lock, str(e)) from None
    if args.do_export:
        check_writable(model_args.export_model_dir or os.path.join(args.output_dir, "export"), "export directory")


RUN_FILE = "cluebench_run.json"  # in every checkpoint: what run made it


def run_fingerprint(task, model_args, data_args, args):
    """What decides training; a checkpoint of another run (task, model, data, hyper-parameters) is refused."""
    hyper = argparse.Namespace(
        model_name_or_path=model_args.model_name_or_path,
        max_seq_length=data_args.max_seq_length,
        **{
            k: getattr(args, k)
            for k in (
                "learning_rate",
                "per_device_train_batch_size",
                "gradient_accumulation_steps",
                "num_train_epochs",
                "max_steps",
                "warmup_ratio",
                "warmup_steps",
                "weight_decay",
                "adam_beta1",
                "adam_beta2",
                "adam_epsilon",
                "max_grad_norm",
                "seed",
            )
        },
    )
    files = [download.split_file(task, split, data_args.data_dir) for split in ("train", "dev")]
    return resume.fingerprint("run_clue_classifier_trainer.py", task, hyper, files, args.world_size)


def check_resumable(checkpoint, fingerprint):
    path = os.path.join(checkpoint, RUN_FILE)
    if not os.path.exists(path):  # made before checkpoints said which run they belong to
        return
    try:
        saved = json.loads(read_bounded(path, STATE_LIMIT))
    except (OSError, ValueError, RecursionError) as e:
        raise DataError(path, f"unreadable ({str(e)[-80:]}); pass --overwrite_output_dir to start over") from None
    if saved != fingerprint:
        raise DataError(
            checkpoint,
            f"checkpoint of a different run: {resume.difference(saved, fingerprint)}; pass "
            "--overwrite_output_dir to start over, or another --output_dir",
        )


# What PaddleNLP 2.8.1's Trainer writes into checkpoint-N, rank 0 alone, one file after the other, each
# straight to its name: the weights, the optimizer and the scheduler (paddle.save pickles), trainer_state.json,
# and last the RNG states of every rank in one pickle (gathered from the ranks first).
WEIGHTS = "model_state.pdparams"
OPTIMIZER_FILES = ("optimizer.pdopt", "scheduler.pdparams")  # not with --ignore_save_lr_and_optim
STATE_FILE = "trainer_state.json"
STATE_LIMIT = 16 << 20  # a few KiB in practice
RNG_LIMIT = 1 << 20  # per rank; about 32 KiB in practice


def rng_file(world_size):
    return "rng_state.pth" if world_size == 1 else f"rng_state_{world_size}.pth"


def open_regular(path):
    """path opened for reading (fileio.open_regular); OSError unless it is a non-empty regular file, so that
    a link, FIFO or device in a checkpoint folder makes it one not to resume from."""
    try:
        f = fileio.open_regular(path)
    except fileio.NotRegular as e:
        raise OSError(str(e)) from None
    if os.fstat(f.fileno()).st_size == 0:
        f.close()
        raise OSError(f"{path}: empty")
    return f


def read_bounded(path, limit):
    with open_regular(path) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path}: over {limit} bytes")
    return data


def pickle_ends(path):
    """Whether a paddle.save file starts and ends as a pickle (protocol 2+: PROTO first, STOP last): cheap on
    gigabytes of weights, and nothing is unpickled (unpickling runs code)."""
    with open_regular(path) as f:
        head = f.read(2)
        f.seek(-1, os.SEEK_END)
        return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5 and f.read(1) == b"."


def pickle_complete(data):
    """Whether bytes are exactly one pickle, walked opcode by opcode to its STOP: parsed, never loaded."""
    try:
        ops = list(pickletools.genops(data))
    except Exception:  # cut short, or not a pickle
        return False
    return ops[-1][0].name == "STOP" and ops[-1][2] == len(data) - 1


def whole(checkpoint, world_size, optimizer=True):
    """Whether a checkpoint of a run on world_size ranks was written to the end: a kill on the way leaves a
    folder that makes resuming fail with a traceback. Judged by the files' names and sizes, the pickles' first
    and last bytes, a parse of trainer_state.json and a walk through the (small) RNG file, written last."""

    def path(name):
        return os.path.join(checkpoint, name)

    try:
        if not all(pickle_ends(path(name)) for name in [WEIGHTS, *(OPTIMIZER_FILES if optimizer else ())]):
            return False
        if not isinstance(json.loads(read_bounded(path(STATE_FILE), STATE_LIMIT)), dict):
            return False
        return pickle_complete(read_bounded(path(rng_file(world_size)), RNG_LIMIT * world_size))
    except (OSError, ValueError, RecursionError):  # missing, cut short or not PaddleNLP's: not one to resume from
        return False


def _private_group(gid):
    """Whether gid is the user's own group (named after the user, as a user private group is)."""
    import grp
    import pwd

    try:
        return gid == os.getgid() and grp.getgrgid(gid).gr_name == pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return False


def check_owned(checkpoint):
    """PaddleNLP's Trainer unpickles a checkpoint's optimizer and RNG files when it resumes (unpickling runs
    code), so only a checkpoint no one else can have written is resumed: the folder and every file in it
    owned by this user and writable by no one else (group write only for the user's private group)."""
    for name in ["", *sorted(os.listdir(checkpoint))]:
        path = os.path.join(checkpoint, name) if name else checkpoint
        info = os.lstat(path)
        if info.st_uid != os.getuid():
            why = f"is owned by uid {info.st_uid}, not by this user"
        elif info.st_mode & stat.S_IWOTH or (info.st_mode & stat.S_IWGRP and not _private_group(info.st_gid)):
            why = "is writable by other users"
        else:
            continue
        raise DataError(
            path,
            f"{why}: not resumed (resuming unpickles the checkpoint's files); pass "
            "--overwrite_output_dir to start over, or another --output_dir",
        )


def saved_world_sizes(checkpoint):
    """The numbers of ranks the RNG files in a checkpoint name."""
    try:
        names = os.listdir(checkpoint)
    except OSError:
        return []
    return [int(m.group(1) or 1) for m in map(re.compile(r"rng_state(?:_(\d+))?\.pth").fullmatch, names) if m]


def checkpoints_of(args):
    """(the newest whole checkpoint to resume from or None, the newer ones cut short by a kill).
    A non-empty output directory without any checkpoint is refused, and so is a whole checkpoint of a run
    on another number of ranks: it is not cut short, and not to be removed."""
    if not (os.path.isdir(args.output_dir) and args.do_train and not args.overwrite_output_dir):
        return None, []
    found = []
    for name in os.listdir(args.output_dir):
        path = os.path.join(args.output_dir, name)
        if not re.fullmatch(r"checkpoint-\d+", name):
            continue
        try:
            real_folder = stat.S_ISDIR(os.lstat(path).st_mode)
        except OSError:  # gone meanwhile
            continue
        if real_folder:
            found.append(name)
        else:  # a link leads out of the output directory: neither followed nor removed
            logger.warning(f"skipped {path}: a link or a file, not a checkpoint folder; neither resumed nor removed")
    found.sort(key=lambda n: int(n.split("-")[1]), reverse=True)
    # hidden entries are our lock and the leftovers of killed saves, not results
    if not found and [n for n in os.listdir(args.output_dir) if not n.startswith(".")]:
        raise DataError(
            args.output_dir,
            "output directory is not empty and holds no checkpoint; pass "
            "--overwrite_output_dir to train into it anyway",
        )
    optimizer = not args.ignore_save_lr_and_optim
    paths = [os.path.join(args.output_dir, n) for n in found]
    last = next((p for p in paths if whole(p, args.world_size, optimizer)), None)
    cut_short = paths[: paths.index(last)] if last else paths
    for path in cut_short:
        other = next((n for n in saved_world_sizes(path) if n != args.world_size and whole(path, n, optimizer)), None)
        if other:
            raise DataError(
                path,
                f"checkpoint of a run on {other} rank(s), this run has {args.world_size}; pass "
                "--overwrite_output_dir to start over, or another --output_dir",
            )
    if last is not None:
        check_owned(last)
    return last, cut_short


def main():
    model_args, data_args, args = parse()
    task = task_from(data_args)
    if args.do_eval and args.evaluation_strategy == "no":  # as upstream: evaluate every logging_steps
        args.evaluation_strategy = type(args.evaluation_strategy)("steps")
        args.eval_steps = args.logging_steps
    args.print_config(model_args, "Model")
    args.print_config(data_args, "Data")
    check_arguments(args, data_args, model_args)
    setup.set_device(args.device)
    last_checkpoint, cut_short = checkpoints_of(args)

    set_seed(args.seed)  # before the model is built, so runs are reproducible
    labels = clue.label_list(task)
    tokenizer, model = setup.load_pretrained(
        AutoModelForSequenceClassification,
        model_args.model_name_or_path,
        data_args.max_seq_length,
        clue.min_seq_length(task),
        num_classes=len(labels),
    )

    def features(split):
        examples, dropped = download.load_split(task, split, data_args.data_dir)
        return examples, clue.encode(tokenizer, examples, data_args.max_seq_length, desc=f"{split} features"), dropped

    # every split the run needs is read and checked before the first step
    train_features = features("train")[1] if args.do_train else None
    _, dev_features, dev_dropped = features("dev") if args.do_train or args.do_eval else (None, None, 0)
    dev_features = length_sorted(dev_features)[0] if dev_features is not None else None
    test_sets = (
        {split: features(split)[:2] for split, _ in clue.prediction_splits(task, data_args.data_dir)}
        if args.do_predict
        else {}
    )
    # once the files are known to be there: the run (data digests included) its checkpoints must belong to
    fingerprint = run_fingerprint(task, model_args, data_args, args) if args.do_train else None
    if last_checkpoint is not None:
        check_resumable(last_checkpoint, fingerprint)
    where = argparse.Namespace(output_dir=args.output_dir, results_file=data_args.results_file)  # of the record
    if args.should_save:  # held until the process ends
        setup.claim_output_dir(args.output_dir, results.record_path(where), break_lock=data_args.break_lock)
        # rank 0 alone removes; the others judged the same files alike, and a folder half removed is not whole
        for path in cut_short:
            shutil.rmtree(path)
            logger.info(f"removed {path}: cut short by a kill (not all of its files are whole)")
    if last_checkpoint is not None:
        logger.info(f"resuming from {last_checkpoint}")

    def compute_metrics(prediction):
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids.reshape(-1)).mean())}

    trainer = RotatingTrainer(
        model=model,
        args=args,
        train_dataset=train_features,
        eval_dataset=dev_features,
        tokenizer=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=[EvaluateAtLastStep()],
    )
    trainer.fingerprint = fingerprint
    start = time.time()
    if args.do_train:
        result = trainer.train(resume_from_checkpoint=last_checkpoint)
        # the dev evaluations of training; the --do_eval one below is not part of the search
        evaluations = [h for h in trainer.state.log_history if "eval_accuracy" in h]
        history = [
            {
                "step": h["step"],
                "epoch": h.get("epoch"),
                "metrics": {"acc": 100 * h["eval_accuracy"]},
                "loss": h.get("eval_loss"),
            }
            for h in evaluations
        ]
        eval_speed = sum(h.get("eval_samples_per_second", 0) for h in evaluations) / max(len(evaluations), 1)
        trainer.save_model()
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()
    if args.do_eval:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    written = []
    if args.do_predict:
        for split, filename in clue.prediction_splits(task, data_args.data_dir):
            examples, test_features = test_sets[split]
            ordered, order = length_sorted(test_features)
            logits = trainer.predict(ordered).predictions
            predicted = np.empty(len(order), np.int64)
            predicted[order] = logits.argmax(-1)
            if trainer.is_world_process_zero():
                path = os.path.join(args.output_dir, filename)
                clue.write_predictions(path, examples, [labels[i] for i in predicted])
                logger.info(f"wrote {len(examples)} predictions for {split} to {path}")
                written.append(path)
    if args.do_export and trainer.is_world_process_zero():
        export_dir = model_args.export_model_dir or os.path.join(args.output_dir, "export")
        spec = [
            paddle.static.InputSpec([None, None], "int64", "input_ids"),
            paddle.static.InputSpec([None, None], "int64", "token_type_ids"),
        ]
        paddle.jit.save(
            paddle.jit.to_static(loop.unwrap(trainer.model), input_spec=spec), os.path.join(export_dir, "model")
        )
        tokenizer.save_pretrained(export_dir)
        logger.info(f"exported the inference model to {export_dir}")
    if args.do_train and trainer.is_world_process_zero() and history:
        best = max(history, key=lambda h: h["metrics"]["acc"])  # first of equals: strict improvement
        record = results.make_record(
            task=task,
            model=model_args.model_name_or_path,
            script="run_clue_classifier_trainer.py",
            hyperparameters={**vars(data_args), **vars(model_args), **args.to_dict()},
            best={"metrics": best["metrics"], "step": best["step"], "epoch": best["epoch"]},
            history=history,
            wall_time_s=time.time() - start,
            throughput={
                "train_examples_per_s": result.metrics.get("train_samples_per_second"),
                "eval_examples_per_s": eval_speed,
                "optimizer_steps": trainer.state.global_step,
                "world_size": args.world_size,
            },
            data={"train_examples": len(train_features), "dev_examples": len(dev_features), "dev_dropped": dev_dropped},
            made_by=provenance.provenance(
                [download.split_file(task, split, data_args.data_dir) for split in ["train", "dev", *test_sets]],
                args.world_size,
            ),
        )
        record["predictions"] = written
        loop.write_record(where, record, "best dev acc")


if __name__ == "__main__":
    setup.exit_cleanly(main)
