"""Fine-tune, evaluate and predict a PaddleNLP model on a CLUE classification task.

Flags and log lines follow the upstream PaddleNLP script; see the README for what is fixed.
"""

import argparse
import time

import cluebench  # noqa: F401  first: it sets up the process before paddle is imported
from cluebench.tasks import classification as clue
from cluebench.train import download, flags, runner, setup, speedups

import numpy as np
from paddlenlp.data import DataCollatorWithPadding
from paddlenlp.transformers import AutoModelForSequenceClassification
from paddlenlp.utils.log import logger


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task_name", type=clue.task_name, required=True, help=", ".join(clue.TASKS))
    flags.add_training_flags(
        p,
        do_flags=ClassifierRun.do_flags,
        zero_steps_ok=ClassifierRun.zero_steps_ok,
        output_dir="best_clue_model",
        max_seq_length=128,
        batch_size=32,
        learning_rate=1e-4,
        weight_decay=0.0,
        adam_epsilon=1e-6,
        num_train_epochs=3,
        gradient_accumulation_steps=1,
        data_dir_help="local files in the official CLUE layout (the task folder or its parent); "
        "default: download PaddleNLP's clue archive",
        output_dir_help="best model (train) and prediction files",
    )
    p.add_argument("--save_steps", type=int, default=100, help="evaluate (and keep the best) every N steps")
    p.add_argument("--dropout", type=float, default=0.1, help="backbone hidden dropout when not 0.1")
    return p.parse_args(argv)


class ClassifierRun(runner.TaskRun):
    script = "run_clue_classifier.py"
    do_flags = (flags.TRAIN, flags.EVAL, flags.PREDICT)
    summary = "best dev acc"
    eval_steps_flag = "save_steps"
    zero_steps_ok = False
    log_template = (
        "global step {step}/{total}, epoch: {epoch}, batch: {batch}, rank_id: {rank}, "
        "loss: {loss:f}, lr: {lr:.10f}, speed: {speed:.4f} step/s"
    )

    def __init__(self, args):
        super().__init__(args)
        self.task = args.task_name
        self.dropped = {}

    def load_model(self):
        tokenizer, model = setup.load_pretrained(
            AutoModelForSequenceClassification,
            self.args.model_name_or_path,
            self.args.max_seq_length,
            clue.min_seq_length(self.task),
            num_classes=len(clue.label_list(self.task)),
        )
        if self.args.dropout != 0.1:
            speedups.override_dropout(model, self.args.dropout)
        self.collate = DataCollatorWithPadding(tokenizer, return_tensors="np")
        return tokenizer, model

    def prediction_splits(self):
        return clue.prediction_splits(self.task, self.args.data_dir)

    def read(self, split, tokenizer, world_size):
        examples, self.dropped[split] = download.load_split(self.task, split, self.args.data_dir)
        return examples, clue.encode(tokenizer, examples, self.args.max_seq_length, desc=f"{split} features")

    def split_files(self, split):
        return [download.split_file(self.task, split, self.args.data_dir)]

    def train_collate(self, features, tokenizer):
        return lambda indices: self.collate([features[i] for i in indices])

    def logits(self, model, features):
        return runner.forward_sorted(
            model,
            [len(f["input_ids"]) for f in features],
            self.args.batch_size,
            lambda indices: self.collate([features[i] for i in indices]),
            autocast=self.precision.autocast,
        )

    def evaluate(self, model, examples, features, tokenizer):
        tic = time.time()
        loss, acc = loss_and_accuracy(self.logits(model, features), np.array([f["labels"] for f in features]))
        logger.info(f"eval loss: {loss:f}, acc: {acc}, ")
        logger.info(f"eval done total : {time.time() - tic} s")
        return {"acc": acc * 100}, loss

    def predict(self, model, split, examples, features, tokenizer, path):
        labels = clue.label_list(self.task)
        clue.write_predictions(path, examples, [labels[i] for i in self.logits(model, features).argmax(1)])
        logger.info(f"wrote {len(examples)} predictions for {split} to {path}")

    def data_counts(self, splits):
        return {
            "train_examples": len(splits["train"][1]),
            "dev_examples": len(splits["dev"][1]),
            "dev_dropped": self.dropped["dev"],
        }


def loss_and_accuracy(logits, labels):
    """Mean cross-entropy over the whole set (upstream logs the last batch's) and accuracy."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean()), float((logits.argmax(1) == labels).mean())


def main(argv=None):
    args = parse_args(argv)
    runner.run(args, ClassifierRun(args))


if __name__ == "__main__":
    setup.exit_cleanly(main)
