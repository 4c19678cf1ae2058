"""CLUE classification on PaddleNLP's Trainer: `--dataset "clue tnews"` as upstream, plus --data_dir.

--do_predict works here (it crashes upstream) and writes the same leaderboard files as
run_clue_classifier.py.
"""
import argparse
import json
import os
import pickle
import re
import shutil
import time
from dataclasses import dataclass, field
from typing import Optional

import cluebench  # noqa: F401  first: it sets up the process before paddle is imported

import numpy as np
import paddle
from paddlenlp.data import DataCollatorWithPadding
from paddlenlp.trainer import (IntervalStrategy, PdArgumentParser, Trainer, TrainerCallback,
                               TrainingArguments, set_seed)
from paddlenlp.transformers import AutoModelForSequenceClassification
from paddlenlp.utils.log import logger

from cluebench import classification as clue, cli, results, resume, training
from cluebench.fileio import DataError, check_writable, write_json


@dataclass
class DataArguments:
    dataset: Optional[str] = field(default=None, metadata={"help": 'e.g. "clue tnews": dataset name, then task'})
    data_dir: Optional[str] = field(default=None, metadata={"help": "local files in the official CLUE layout"})
    max_seq_length: int = field(default=128, metadata={"help": "truncation length"})
    results_file: Optional[str] = field(default=None, metadata={"help": "results record; default "
                                                                        "OUTPUT_DIR/clue_results.json"})
    do_lower_case: bool = field(default=False, metadata={"help": "unused; kept for upstream command lines"})


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
            write_json(os.path.join(self.args.output_dir, f"checkpoint-{self.state.global_step}", RUN_FILE),
                       self.fingerprint)
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
        raise cli.flag_error("dataset", repr(data_args.dataset), str(e)) from None


def length_sorted(features):
    """(features in length order, the order): the Trainer evaluates sequentially, so this pads little."""
    order = np.argsort([len(f["input_ids"]) for f in features], kind="stable")
    return [features[i] for i in order], order


# PaddleNLP accepts zeros, negatives and nan here that fail (or train nothing) hours later
TRAINER_RULES = [(flag, lambda v: v >= 1, "must be at least 1") for flag in (
    "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps", "logging_steps",
    "save_steps")] + [
    ("learning_rate", lambda v: v > 0, "must be positive"),
    ("adam_epsilon", lambda v: v > 0, "must be positive"),
    ("weight_decay", lambda v: v >= 0, "must not be negative"),
    ("max_grad_norm", lambda v: v >= 0, "must not be negative"),
    ("num_train_epochs", lambda v: v >= 0, "must not be negative"),
    ("seed", lambda v: 0 <= v < 2 ** 32, "must be between 0 and 2**32 - 1"),
]
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
    cli.check_numbers(args, TRAINER_RULES)
    cli.check_something_to_do(args)
    if args.do_train and args.max_steps <= 0 and args.num_train_epochs <= 0:
        raise cli.flag_error("num_train_epochs", args.num_train_epochs, "must be positive to train (or give --max_steps)")
    if args.metric_for_best_model and args.metric_for_best_model not in METRICS:
        raise cli.flag_error("metric_for_best_model", args.metric_for_best_model, f"must be one of {', '.join(METRICS)}")
    if data_args.max_seq_length < 1:
        raise cli.flag_error("max_seq_length", data_args.max_seq_length, "must be at least 1")
    if args.do_export:
        check_writable(model_args.export_model_dir or os.path.join(args.output_dir, "export"), "export directory")


RUN_FILE = "cluebench_run.json"  # in every checkpoint: what run made it


def run_fingerprint(task, model_args, data_args, args):
    """What decides training; a checkpoint of another run (task, model, data, hyper-parameters) is refused."""
    hyper = argparse.Namespace(model_name_or_path=model_args.model_name_or_path,
                               max_seq_length=data_args.max_seq_length, **{k: getattr(args, k) for k in (
                                   "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps",
                                   "num_train_epochs", "max_steps", "warmup_ratio", "warmup_steps", "weight_decay",
                                   "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "seed")})
    files = [clue.split_file(task, split, data_args.data_dir) for split in ("train", "dev")]
    return resume.fingerprint("run_clue_classifier_trainer.py", task, hyper, files, args.world_size)


def check_resumable(checkpoint, fingerprint):
    path = os.path.join(checkpoint, RUN_FILE)
    if not os.path.exists(path):  # made before checkpoints said which run they belong to
        return
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    if saved != fingerprint:
        raise DataError(checkpoint, f"checkpoint of a different run: {resume.difference(saved, fingerprint)}; pass "
                                    "--overwrite_output_dir to start over, or another --output_dir")


def whole(checkpoint):
    """Whether a checkpoint was written to the end. PaddleNLP writes the weights, the optimizer, the
    scheduler, trainer_state.json and last the RNG states, each file straight to its name: a kill on
    the way leaves a folder that makes resuming fail with a traceback."""
    try:
        with open(os.path.join(checkpoint, "trainer_state.json"), encoding="utf-8") as f:
            json.load(f)
        with open(os.path.join(checkpoint, "rng_state.pth"), "rb") as f:
            pickle.load(f)  # paddle.save's format; paddle.load would turn its uint32 arrays into tensors and fail
        for name in ("model_state.pdparams", "optimizer.pdopt"):  # read whole: a damaged disk, not a kill
            if os.path.exists(os.path.join(checkpoint, name)):
                paddle.load(os.path.join(checkpoint, name), return_numpy=True)
        return True
    except Exception:  # missing, or cut short: either way not a checkpoint to resume from
        return False


def checkpoints_of(args):
    """(the newest whole checkpoint to resume from or None, the newer ones cut short by a kill).
    A non-empty output directory without any checkpoint is refused."""
    if not (os.path.isdir(args.output_dir) and args.do_train and not args.overwrite_output_dir):
        return None, []
    found = sorted((n for n in os.listdir(args.output_dir) if re.fullmatch(r"checkpoint-\d+", n)),
                   key=lambda n: int(n.split("-")[1]), reverse=True)
    # hidden entries are our lock and the leftovers of killed saves, not results
    if not found and [n for n in os.listdir(args.output_dir) if not n.startswith(".")]:
        raise DataError(args.output_dir, "output directory is not empty and holds no checkpoint; pass "
                                         "--overwrite_output_dir to train into it anyway")
    paths = [os.path.join(args.output_dir, n) for n in found]
    last = next((p for p in paths if whole(p)), None)
    return last, paths[:paths.index(last)] if last else paths


def main():
    model_args, data_args, args = parse()
    task = task_from(data_args)
    if args.do_eval and args.evaluation_strategy == "no":  # as upstream: evaluate every logging_steps
        args.evaluation_strategy = type(args.evaluation_strategy)("steps")
        args.eval_steps = args.logging_steps
    args.print_config(model_args, "Model")
    args.print_config(data_args, "Data")
    check_arguments(args, data_args, model_args)
    cli.set_device(args.device)
    last_checkpoint, cut_short = checkpoints_of(args)

    set_seed(args.seed)  # before the model is built, so runs are reproducible
    labels = clue.label_list(task)
    tokenizer, model = cli.load_pretrained(AutoModelForSequenceClassification, model_args.model_name_or_path,
                                           data_args.max_seq_length, clue.min_seq_length(task),
                                           num_classes=len(labels))

    def features(split):
        examples, dropped = clue.load_split(task, split, data_args.data_dir)
        return examples, clue.encode(tokenizer, examples, data_args.max_seq_length, desc=f"{split} features"), dropped

    # every split the run needs is read and checked before the first step
    train_features = features("train")[1] if args.do_train else None
    _, dev_features, dev_dropped = features("dev") if args.do_train or args.do_eval else (None, None, 0)
    dev_features = length_sorted(dev_features)[0] if dev_features is not None else None
    test_sets = {split: features(split)[:2] for split, _ in clue.prediction_splits(task, data_args.data_dir)
                 } if args.do_predict else {}
    # once the files are known to be there: the run (data digests included) its checkpoints must belong to
    fingerprint = run_fingerprint(task, model_args, data_args, args) if args.do_train else None
    if last_checkpoint is not None:
        check_resumable(last_checkpoint, fingerprint)
    where = argparse.Namespace(output_dir=args.output_dir, results_file=data_args.results_file)  # of the record
    if args.should_save:  # held until the process ends
        cli.claim_output_dir(args.output_dir, results.record_path(where))
        for path in cut_short:
            shutil.rmtree(path)
            logger.info(f"removed {path}: cut short by a kill (not all of its files are whole)")
    if last_checkpoint is not None:
        logger.info(f"resuming from {last_checkpoint}")

    def compute_metrics(prediction):
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids.reshape(-1)).mean())}

    trainer = RotatingTrainer(model=model, args=args, train_dataset=train_features, eval_dataset=dev_features,
                              tokenizer=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
                              compute_metrics=compute_metrics, callbacks=[EvaluateAtLastStep()])
    trainer.fingerprint = fingerprint
    start = time.time()
    if args.do_train:
        result = trainer.train(resume_from_checkpoint=last_checkpoint)
        # the dev evaluations of training; the --do_eval one below is not part of the search
        evaluations = [h for h in trainer.state.log_history if "eval_accuracy" in h]
        history = [{"step": h["step"], "epoch": h.get("epoch"), "metrics": {"acc": 100 * h["eval_accuracy"]},
                    "loss": h.get("eval_loss")} for h in evaluations]
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
        spec = [paddle.static.InputSpec([None, None], "int64", "input_ids"),
                paddle.static.InputSpec([None, None], "int64", "token_type_ids")]
        paddle.jit.save(paddle.jit.to_static(training.unwrap(trainer.model), input_spec=spec),
                        os.path.join(export_dir, "model"))
        tokenizer.save_pretrained(export_dir)
        logger.info(f"exported the inference model to {export_dir}")
    if args.do_train and trainer.is_world_process_zero() and history:
        best = max(history, key=lambda h: h["metrics"]["acc"])  # first of equals: strict improvement
        record = results.make_record(
            task=task, model=model_args.model_name_or_path, script="run_clue_classifier_trainer.py",
            hyperparameters={**vars(data_args), **vars(model_args), **args.to_dict()},
            best={"metrics": best["metrics"], "step": best["step"], "epoch": best["epoch"]},
            history=history, wall_time_s=time.time() - start,
            throughput={"train_examples_per_s": result.metrics.get("train_samples_per_second"),
                        "eval_examples_per_s": eval_speed,
                        "optimizer_steps": trainer.state.global_step, "world_size": args.world_size},
            data={"train_examples": len(train_features), "dev_examples": len(dev_features),
                  "dev_dropped": dev_dropped},
            made_by=results.provenance([clue.split_file(task, split, data_args.data_dir)
                                        for split in ["train", "dev", *test_sets]], args.world_size))
        record["predictions"] = written
        training.report(where, record, "best dev acc")


if __name__ == "__main__":
    cli.run(main)
