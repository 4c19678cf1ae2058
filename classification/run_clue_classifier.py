"""Fine-tune, evaluate and predict a PaddleNLP model on a CLUE classification task.

Flags and log lines follow the upstream PaddleNLP script; see the README for what is fixed.
"""
import argparse
import time

import cluebench  # noqa: F401  first: it sets up the process before paddle is imported

import numpy as np
from paddlenlp.data import DataCollatorWithPadding
from paddlenlp.transformers import AutoModelForSequenceClassification
from paddlenlp.utils.log import logger

from cluebench.tasks import classification as clue
from cluebench.train import download, loop, precision, resume, runner, setup
from cluebench import results


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task_name", type=clue.task_name, required=True, help=", ".join(clue.TASKS))
    p.add_argument("--model_name_or_path", required=True, help="built-in model name or local directory")
    p.add_argument("--data_dir", default=None,
                   help="local files in the official CLUE layout (the task folder or its parent); "
                        "default: download PaddleNLP's clue archive")
    p.add_argument("--output_dir", default="best_clue_model", help="best model (train) and prediction files")
    p.add_argument("--results_file", default=None, help=f"results record; default OUTPUT_DIR/{results.FILENAME}")
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--num_train_epochs", type=int, default=3)
    p.add_argument("--logging_steps", type=int, default=100)
    p.add_argument("--save_steps", type=int, default=100, help="evaluate (and keep the best) every N steps")
    p.add_argument("--batch_size", type=int, default=32, help="effective batch per card")
    p.add_argument("--weight_decay", type=float, default=0.0)
    p.add_argument("--warmup_steps", type=int, default=0)
    p.add_argument("--warmup_proportion", type=float, default=0.1)
    p.add_argument("--adam_epsilon", type=float, default=1e-6)
    p.add_argument("--gradient_accumulation_steps", type=int, default=1)
    p.add_argument("--do_train", action="store_true")
    p.add_argument("--do_eval", action="store_true")
    p.add_argument("--do_predict", action="store_true")
    p.add_argument("--max_steps", type=int, default=-1, help="> 0: optimizer steps, overrides epochs")
    p.add_argument("--save_best_model", type=setup.strtobool, default=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="gpu", help="cpu, gpu or xpu")
    p.add_argument("--dropout", type=float, default=0.1, help="backbone hidden dropout when not 0.1")
    p.add_argument("--max_grad_norm", type=float, default=1.0)
    p.add_argument("--to_static", type=setup.strtobool, default=True,
                   help="run the model as one static program (paddle.jit.to_static): the same numbers, 2-4x "
                        "faster steps on a CPU; false: the eager path")
    p.add_argument("--logdir", default=None, help="VisualDL log folder (train loss, learning rate, dev metrics)")
    precision.add_flag(p)
    resume.add_flags(p)
    return p.parse_args(argv)


class ClassifierRun(runner.TaskRun):
    script = "run_clue_classifier.py"
    summary = "best dev acc"
    eval_steps_flag = "save_steps"
    zero_steps_ok = False
    log_template = ("global step {step}/{total}, epoch: {epoch}, batch: {batch}, rank_id: {rank}, "
                    "loss: {loss:f}, lr: {lr:.10f}, speed: {speed:.4f} step/s")

    def __init__(self, args):
        super().__init__(args)
        self.task = args.task_name
        self.dropped = {}

    def load_model(self):
        tokenizer, model = setup.load_pretrained(
            AutoModelForSequenceClassification, self.args.model_name_or_path, self.args.max_seq_length,
            clue.min_seq_length(self.task), num_classes=len(clue.label_list(self.task)))
        if self.args.dropout != 0.1:
            loop.override_dropout(model, self.args.dropout)
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
        return runner.forward_sorted(model, [len(f["input_ids"]) for f in features], self.args.batch_size,
                                     lambda indices: self.collate([features[i] for i in indices]),
                                     autocast=self.precision.autocast)

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
        return {"train_examples": len(splits["train"][1]), "dev_examples": len(splits["dev"][1]),
                "dev_dropped": self.dropped["dev"]}


def loss_and_accuracy(logits, labels):
    """Mean cross-entropy over the whole set (upstream logs the last batch's) and accuracy."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean()), float((logits.argmax(1) == labels).mean())


def main(argv=None):
    args = parse_args(argv)
    runner.run(args, ClassifierRun(args))


if __name__ == "__main__":
    setup.run(main)
