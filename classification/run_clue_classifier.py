"""Fine-tune, evaluate and predict a PaddleNLP model on a CLUE classification task.

Flags and log lines follow the upstream PaddleNLP script; see the README for what is fixed.
"""
import argparse
import os
import time

import cluebench  # noqa: F401  first: it sets up the process before paddle is imported

import numpy as np
import paddle
from paddlenlp.data import DataCollatorWithPadding
from paddlenlp.transformers import AutoModelForSequenceClassification
from paddlenlp.utils.log import logger

from cluebench import classification as clue, cli, results, resume, training
from cluebench.fileio import atomic_save_pretrained


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
    p.add_argument("--save_best_model", type=cli.strtobool, default=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="gpu", help="cpu, gpu or xpu")
    p.add_argument("--dropout", type=float, default=0.1, help="backbone hidden dropout when not 0.1")
    p.add_argument("--max_grad_norm", type=float, default=1.0)
    resume.add_flags(p)
    return p.parse_args(argv)


def dev_logits(model, features, batch_size, collate):
    """Logits in feature order, computed over length-sorted batches in eval mode."""
    model.eval()
    logits = None
    with paddle.no_grad():
        for index in training.length_sorted_batches([len(f["input_ids"]) for f in features], batch_size):
            batch = collate([features[i] for i in index])
            out = model(input_ids=paddle.to_tensor(batch["input_ids"]),
                        token_type_ids=paddle.to_tensor(batch["token_type_ids"])).numpy()
            logits = np.empty((len(features), out.shape[1]), np.float32) if logits is None else logits
            logits[index] = out
    model.train()
    return logits


def loss_and_accuracy(logits, labels):
    """Mean cross-entropy over the whole set (upstream logs the last batch's) and accuracy."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean()), float((logits.argmax(1) == labels).mean())


def evaluate(model, features, args, collate):
    logits = dev_logits(training.unwrap(model), features, args.batch_size, collate)
    return loss_and_accuracy(logits, np.array([f["labels"] for f in features]))


compute_loss = training.cross_entropy_loss


def load_data(args, tokenizer, rank):
    """{split: (examples, features, dropped)} for every split this run will read, test sets included:
    all of it is read and checked before the first training step."""
    splits = (["train", "dev"] if args.do_train else []) + (["dev"] if args.do_eval and not args.do_train else [])
    if args.do_predict and rank == 0:  # rank 0 alone predicts
        splits += [split for split, _ in clue.prediction_splits(args.task_name, args.data_dir)]
    data = {}
    for split in splits:
        examples, dropped = clue.load_split(args.task_name, split, args.data_dir)
        data[split] = (examples, clue.encode(tokenizer, examples, args.max_seq_length, desc=f"{split} features"),
                       dropped)
    return data


def train(args, model, tokenizer, collate, data, rank, world_size):
    train_features = data["train"][1]
    _, dev_features, dropped = data["dev"]
    logger.info(f"{args.task_name}: {len(train_features)} train and {len(dev_features)} dev examples")

    gas = args.gradient_accumulation_steps
    loader = training.shuffled_batches(len(train_features), args.batch_size // gas,
                                       lambda indices: collate([train_features[i] for i in indices]))
    total_steps, epochs = training.plan_steps(len(loader), gas, args.num_train_epochs, args.max_steps)
    scheduler, optimizer = training.build_optimizer(model, args, total_steps)
    if world_size > 1:
        model = paddle.DataParallel(model)

    tracker = training.BestTracker("acc", keep_state=args.do_eval or args.do_predict)
    checkpoint = resume.Checkpointer(args, lambda: resume.fingerprint(
        "run_clue_classifier.py", args.task_name, args,
        [clue.split_file(args.task_name, split, args.data_dir) for split in ("train", "dev")], world_size),
        rank=rank, world_size=world_size)

    def on_evaluate(step, epoch):
        if rank != 0:
            return
        tic = time.time()
        loss, acc = evaluate(model, dev_features, args, collate)
        tracker.eval_time_s += time.time() - tic
        logger.info(f"eval loss: {loss:f}, acc: {acc}, ")
        logger.info(f"eval done total : {time.time() - tic} s")
        if tracker.update(model, {"acc": acc * 100}, step, epoch, loss) and args.save_best_model:
            atomic_save_pretrained(args.output_dir, training.unwrap(model), tokenizer)

    with checkpoint:
        stats = training.train_loop(
            model, loader, compute_loss, optimizer, scheduler, total_steps=total_steps, epochs=epochs, gas=gas,
            logging_steps=args.logging_steps, eval_steps=args.save_steps, evaluate=on_evaluate, rank=rank,
            log_template="global step {step}/{total}, epoch: {epoch}, batch: {batch}, rank_id: {rank}, "
                         "loss: {loss:f}, lr: {lr:.10f}, speed: {speed:.4f} step/s",
            seed=args.seed, checkpoint=checkpoint, progress=checkpoint.restore(model, optimizer, scheduler, tracker))
    model = training.unwrap(model)
    tracker.restore_best(model)
    if rank != 0:
        return model, None, None
    n_evals = len(tracker.history)
    record = results.make_record(
        task=args.task_name, model=args.model_name_or_path, script="run_clue_classifier.py",
        hyperparameters=vars(args), best=tracker.best, history=tracker.history,
        wall_time_s=checkpoint.elapsed(),
        throughput={"train_examples_per_s": stats["examples"] * world_size / max(stats["train_time_s"], 1e-9),
                    "eval_examples_per_s": n_evals * len(dev_features) / max(tracker.eval_time_s, 1e-9),
                    "optimizer_steps": stats["steps"], "world_size": world_size},
        data={"train_examples": len(train_features), "dev_examples": len(dev_features), "dev_dropped": dropped})
    return model, record, checkpoint


def predict(args, model, collate, data):
    written = []
    labels = clue.label_list(args.task_name)
    for split, filename in clue.prediction_splits(args.task_name, args.data_dir):
        examples, features, _ = data[split]
        predicted = dev_logits(model, features, args.batch_size, collate).argmax(1)
        path = os.path.join(args.output_dir, filename)
        clue.write_predictions(path, examples, [labels[i] for i in predicted])
        logger.info(f"wrote {len(examples)} predictions for {split} to {path}")
        written.append(path)
    return written


def main(argv=None):
    args = parse_args(argv)
    cli.print_arguments(args)
    cli.check_training_flags(args)
    cli.set_device(args.device)
    rank, world_size = cli.init_distributed()
    cli.set_seed(args.seed)
    tokenizer, model = cli.load_pretrained(
        AutoModelForSequenceClassification, args.model_name_or_path, args.max_seq_length,
        clue.min_seq_length(args.task_name), num_classes=len(clue.label_list(args.task_name)))
    if args.dropout != 0.1:
        training.override_dropout(model, args.dropout)
    collate = DataCollatorWithPadding(tokenizer, return_tensors="np")
    data = load_data(args, tokenizer, rank)
    # checked, now ours: nothing was written before this point
    with cli.claim_output_dir(args.output_dir, results.record_path(args), rank=rank):
        record = checkpoint = None
        if args.do_train:  # afterwards `model` holds the best dev weights, not the last ones
            model, record, checkpoint = train(args, model, tokenizer, collate, data, rank, world_size)
        if rank != 0:
            return
        if args.do_eval:
            loss, acc = evaluate(model, data["dev"][1], args, collate)
            logger.info(f"eval loss: {loss:f}, acc: {acc}, ")
        predictions = predict(args, model, collate, data) if args.do_predict else []
        if record is not None:
            record["predictions"] = predictions
            training.report(args, record, "best dev acc")
            checkpoint.remove()


if __name__ == "__main__":
    cli.run(main)
