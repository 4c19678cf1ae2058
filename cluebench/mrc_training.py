"""What the three reading-comprehension scripts share: flags, cached features, batches, the
training run with one dev evaluation per epoch, and the closing record and log lines."""
import argparse
import os

import numpy as np
import paddle
from paddlenlp.utils.log import logger

from . import cli, mrc, results, resume, training
from .fast_tokenizer import TextEncoder
from .fileio import atomic_save_pretrained, check_writable, clean_leftovers


def parser(description, **defaults):
    """The flags of the upstream MRC scripts; `defaults` sets the per-script values."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model_name_or_path", required=True, help="built-in model name or local directory")
    p.add_argument("--data_dir", default=None, help="local files in the official layout (<task>_public/)")
    p.add_argument("--output_dir", default=defaults["output_dir"])
    p.add_argument("--results_file", default=None, help=f"results record; default OUTPUT_DIR/{results.FILENAME}")
    p.add_argument("--save_best_model", type=cli.strtobool, default=True)
    p.add_argument("--overwrite_cache", type=cli.strtobool, default=False, help="rebuild the cached features")
    p.add_argument("--cache_dir", default=None, help=f"feature cache (default {mrc.default_cache_dir()})")
    p.add_argument("--num_proc", type=int, default=None,
                   help="accepted for upstream command lines; features are built by the Rust tokenizer")
    p.add_argument("--max_seq_length", type=int, default=defaults["max_seq_length"])
    p.add_argument("--batch_size", type=int, default=defaults["batch_size"], help="effective batch per card")
    p.add_argument("--eval_batch_size", type=int, default=defaults["eval_batch_size"])
    p.add_argument("--learning_rate", type=float, default=defaults["learning_rate"])
    p.add_argument("--weight_decay", type=float, default=defaults["weight_decay"])
    p.add_argument("--adam_epsilon", type=float, default=defaults["adam_epsilon"])
    p.add_argument("--max_grad_norm", type=float, default=1.0)
    p.add_argument("--num_train_epochs", type=int, default=defaults["num_train_epochs"])
    p.add_argument("--max_steps", type=int, default=-1, help=">= 0 overrides epochs; 0 trains no step")
    p.add_argument("--warmup_steps", type=int, default=0)
    p.add_argument("--warmup_proportion", type=float, default=defaults.get("warmup_proportion", 0.1))
    p.add_argument("--logging_steps", type=int, default=100)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="gpu", help="cpu, gpu or xpu")
    p.add_argument("--gradient_accumulation_steps", type=int, default=defaults["gradient_accumulation_steps"])
    p.add_argument("--do_train", action="store_true")
    p.add_argument("--do_predict", action="store_true")
    resume.add_flags(p)
    return p


def check_args(args, task):
    """Flags, then the cache and output directories, before any work (doc_stride 0 would loop forever)."""
    cli.check_training_flags(args, zero_steps_ok=True)
    args.cache_dir = args.cache_dir or mrc.default_cache_dir()
    check_writable(args.cache_dir, "cache directory")
    check_writable(args.output_dir)  # again when claimed; here so that it fails before features are built
    if args.data_dir is None:  # upstream's path: HuggingFace's clue data set, downloaded
        args.data_dir = mrc.download(task)
    return args


def setup(args):
    """Banner, device, ranks, seed; returns (rank, world_size)."""
    cli.print_arguments(args)
    cli.set_device(args.device)
    rank, world_size = cli.init_distributed()
    cli.set_seed(args.seed)
    return rank, world_size


def prepare(args, task, split_features, rank):
    """Every split the run needs, read, checked and featurised (or loaded from the cache) before the first
    training step: {split: (examples, features)}, train and dev with --do_train and, on rank 0 (it alone
    predicts), every test version present with --do_predict. split_features(split, ranks=...) builds one.

    The test splits come first: a bad test file is found before the train features are built, and the
    other ranks wait meanwhile at the barrier of the train split."""
    if rank == 0:
        clean_leftovers(args.cache_dir)  # .tmp files of killed runs
    splits = {}
    if args.do_predict and rank == 0:
        for split, _ in mrc.prediction_splits(task, args.data_dir):
            splits[split] = split_features(split, ranks=1)
    if args.do_train:
        for split in ("train", "dev"):
            splits[split] = split_features(split)
    return splits


def features(args, task, split, tokenizer, build, world_size, doc_stride=None):
    """(examples, features) of a split: rank 0 builds or loads the cache first, the others then load it.

    Test splits are for rank 0 alone (it alone predicts): call them with world_size=1.
    """
    examples = mrc.load_examples(task, split, args.data_dir)
    key = mrc.cache_key(task, split, mrc.split_files(task, split, args.data_dir), tokenizer,
                        args.max_seq_length, doc_stride)
    encoder = TextEncoder(tokenizer)

    def get(overwrite):
        return mrc.cached_features(key, lambda: build(examples, encoder), args.cache_dir, overwrite)

    if world_size > 1:
        if paddle.distributed.get_rank() == 0:
            result = get(args.overwrite_cache)
        paddle.distributed.barrier()
        if paddle.distributed.get_rank() != 0:
            result = get(False)
        return examples, result
    return examples, get(args.overwrite_cache)


def make_collate(feats, pad_id, label_names):
    """index list -> padded numpy batch: input_ids/token_type_ids [B, L] (or [B, choices, L]) and labels."""
    def collate(indices):
        seqs = [feats.rows("input_ids", i) for i in indices]
        longest = max(len(r) for rows in seqs for r in rows)
        ids = np.full((len(indices), feats.group, longest), pad_id, np.int64)
        types = np.zeros_like(ids)
        has_types = "token_type_ids.values" in feats.columns
        for b, i in enumerate(indices):
            type_rows = feats.rows("token_type_ids", i) if has_types else [None] * feats.group
            for g, (row, type_row) in enumerate(zip(seqs[b], type_rows)):
                ids[b, g, :len(row)] = row
                if type_row is not None:
                    types[b, g, :len(type_row)] = type_row
        if feats.group == 1:
            ids, types = ids[:, 0], types[:, 0]
        batch = {"input_ids": ids, "token_type_ids": types}
        for name in label_names:
            batch[name] = np.asarray(feats[name][np.asarray(indices)], np.int64)
        return batch
    return collate


def forward_sorted(model, feats, batch_size, collate, per_token=False):
    """The model's outputs for every feature, in feature order, computed in eval mode on length-sorted
    batches: one array [features, ...] per output, or with per_token a list of per-feature arrays
    cut to each feature's length (question answering's start and end logits)."""
    lengths = feats.lengths()
    outputs = None
    model.eval()
    with paddle.no_grad():
        for index in training.length_sorted_batches(lengths, batch_size):
            batch = collate(index)
            out = model(input_ids=paddle.to_tensor(batch["input_ids"]),
                        token_type_ids=paddle.to_tensor(batch["token_type_ids"]))
            arrays = [o.numpy() for o in (out if isinstance(out, (tuple, list)) else [out])]
            if outputs is None:
                outputs = [[None] * len(feats) for _ in arrays]
            for store, array in zip(outputs, arrays):
                for row, i in enumerate(index):
                    store[i] = array[row, :lengths[i]] if per_token else array[row]
    model.train()
    outputs = outputs if per_token else [np.stack(o) for o in outputs]
    return outputs if len(outputs) > 1 else outputs[0]


def fit(args, task, model, tokenizer, train_feats, collate, compute_loss, evaluate, key, log_template, rank,
        world_size):
    """Train with one dev evaluation after every epoch (the last included) on rank 0, resuming from the
    checkpoint a killed run of the same command left (resume.py).

    evaluate(model, step, epoch) -> metrics in percent (it logs its own lines). Returns (model holding
    the best weights, tracker, stats). --max_steps 0 trains nothing and evaluates nothing.
    """
    gas = args.gradient_accumulation_steps
    loader = training.shuffled_batches(len(train_feats), args.batch_size // gas, collate)
    total_steps, epochs = training.plan_steps(len(loader), gas, args.num_train_epochs, args.max_steps,
                                              zero_means_no_steps=True)
    scheduler, optimizer = training.build_optimizer(model, args, total_steps)
    if world_size > 1:
        model = paddle.DataParallel(model)
    tracker = training.BestTracker(key, keep_state=args.do_predict)
    checkpoint = resume.Checkpointer(args, lambda: resume.fingerprint(
        f"run_{task}.py", task, args, [p for s in ("train", "dev") for p in mrc.split_files(task, s, args.data_dir)],
        world_size), rank=rank, world_size=world_size)

    def on_evaluate(step, epoch):
        if rank != 0:
            return
        metrics = evaluate(training.unwrap(model), step, epoch)
        if tracker.update(model, metrics, step, epoch) and args.save_best_model:
            atomic_save_pretrained(args.output_dir, training.unwrap(model), tokenizer)

    with checkpoint:
        stats = training.train_loop(
            model, loader, compute_loss, optimizer, scheduler, total_steps=total_steps, epochs=epochs, gas=gas,
            logging_steps=args.logging_steps, log_template=log_template, evaluate=on_evaluate, eval_steps=None,
            rank=rank, seed=args.seed, checkpoint=checkpoint,
            progress=checkpoint.restore(model, optimizer, scheduler, tracker))
    model = training.unwrap(model)
    tracker.restore_best(model)
    return model, tracker, dict(stats, world_size=world_size, checkpoint=checkpoint)


def finish(args, task, tracker, stats, data, predictions, zero_metrics):
    """Rank 0: write the record, log the summary, end with the best_result line."""
    if tracker is None or tracker.best is None:  # nothing trained (--max_steps 0) or predict only
        if args.do_train:
            logger.info("no optimizer step was taken (--max_steps 0): features are built and cached")
            logger.info(results.best_result_line(zero_metrics))
        return
    record = results.make_record(
        task=task, model=args.model_name_or_path, script=f"run_{task}.py", hyperparameters=vars(args),
        best=tracker.best, history=tracker.history, wall_time_s=stats["checkpoint"].elapsed(),
        throughput={"train_examples_per_s": stats["examples"] * stats["world_size"] / max(stats["train_time_s"], 1e-9),
                    "optimizer_steps": stats["steps"], "world_size": stats["world_size"]},
        data=data)
    record["predictions"] = predictions
    training.report(args, record, "best dev")
    stats["checkpoint"].remove()


def output_path(args, name):
    return os.path.join(args.output_dir, name)
