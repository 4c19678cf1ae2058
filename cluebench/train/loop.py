"""The training loop of the argparse scripts: AdamW with linear warmup and decay, gradient
accumulation, evaluation every N steps or every epoch, best-result tracking."""

import contextlib
import hashlib
import math
import os
import time

import numpy as np
import paddle
import paddle.nn.functional as F
from paddlenlp.transformers import LinearDecayWithWarmup
from paddlenlp.utils.log import logger

from .. import results
from .precision import Precision


def unwrap(model):
    return model._layers if isinstance(model, paddle.DataParallel) else model


def cross_entropy_loss(model, batch):
    """Cross-entropy of the model's logits (over classes, or over choices) against batch["labels"]."""
    return F.cross_entropy(model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"]), batch["labels"])


def span_loss(model, batch):
    """Mean of the start and end cross-entropies of a span-extraction model (CMRC2018)."""
    start_logits, end_logits = model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"])
    return (
        F.cross_entropy(start_logits, batch["start_positions"]) + F.cross_entropy(end_logits, batch["end_positions"])
    ) / 2


class BatchLoader:
    """Tensors of the batches a batch sampler draws, collated in this thread.

    Paddle's DataLoader collates in a helper thread even without workers, and when collate fails
    there the main loop waits forever; here a failure ends the run with its own error. The batches
    (and their order) are the sampler's, as with the DataLoader."""

    def __init__(self, batch_sampler, collate):
        self.batch_sampler, self.collate = batch_sampler, collate

    def __len__(self):
        return len(self.batch_sampler)

    def epoch(self, number=None, start=0):
        """The batches of one epoch from the start-th on; with a number, that epoch's shuffle (a resumed
        run skips the batches it has already trained on without collating them)."""
        if number is not None and hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(number)
        for index, indices in enumerate(self.batch_sampler):
            if index >= start:
                yield index, {name: paddle.to_tensor(value) for name, value in self.collate(indices).items()}


def shuffled_batches(n, micro_batch_size, collate):
    """Shuffled micro-batches over n examples, each rank taking its share: collate(indices) -> numpy dict."""
    sampler = paddle.io.DistributedBatchSampler(range(n), batch_size=micro_batch_size, shuffle=True)
    return BatchLoader(sampler, collate)


def write_record(args, record, what):
    """Write the results record, log a summary a person can read, and end with the best_result line
    (last, as upstream's extract_result.sh reads it). what: e.g. "best dev acc"."""
    path = results.record_path(args)
    record["predictions"] = [os.path.abspath(p) for p in record.get("predictions", [])]  # usable from anywhere
    results.write_record(path, record)
    best = record["best"]
    logger.info(
        f"summary: {record['task']} {what} {best['value']} at step {best['step']} (epoch {best['epoch']}) "
        f"over {len(record['history'])} evaluations; "
        f"{record['throughput']['train_examples_per_s']:.1f} train examples/s; "
        f"{record['wall_time_s']:.1f} s; record {path}"
    )
    logger.info(results.best_result_line(best["metrics"]))


def build_optimizer(model, args, total_steps):
    """(scheduler, AdamW): no weight decay on bias/norm parameters, global-norm clipping."""
    warmup = args.warmup_steps if args.warmup_steps > 0 else args.warmup_proportion
    scheduler = LinearDecayWithWarmup(args.learning_rate, total_steps, warmup)
    decay = {p.name for n, p in model.named_parameters() if not any(k in n for k in ("bias", "norm"))}
    clip = paddle.nn.ClipGradByGlobalNorm(args.max_grad_norm) if args.max_grad_norm > 0 else None
    optimizer = paddle.optimizer.AdamW(
        learning_rate=scheduler,
        beta1=0.9,
        beta2=0.999,
        epsilon=args.adam_epsilon,
        parameters=model.parameters(),
        weight_decay=args.weight_decay,
        apply_decay_param_fun=lambda name: name in decay,
        grad_clip=clip,
    )
    return scheduler, optimizer


def length_sorted_batches(lengths, batch_size):
    """Index batches over examples ordered by length: evaluation pads little.

    Callers scatter results back by index, so output keeps the original order.
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def plan_steps(batches_per_epoch, gas, num_train_epochs, max_steps, zero_means_no_steps=False):
    """(total optimizer steps, epochs to iterate).

    A trailing partial accumulation group at an epoch's end still makes an update, so no
    gradient leaks into the next epoch and the step count is a whole number. max_steps > 0
    counts optimizer steps; the MRC scripts also take 0 as "no step at all".
    """
    per_epoch = max(1, math.ceil(batches_per_epoch / gas))
    if max_steps > 0:
        return max_steps, math.ceil(max_steps / per_epoch)
    if max_steps == 0 and zero_means_no_steps:
        return 0, 0
    return per_epoch * num_train_epochs, num_train_epochs


class BestTracker:
    """History of dev evaluations and the best one (strictly higher `key` wins, as upstream)."""

    def __init__(self, key, keep_state=False):
        self.key, self.keep_state = key, keep_state
        self.best, self.history, self.state = None, [], None
        self.eval_time_s = 0.0  # spent in evaluation, for the record's throughput

    def update(self, model, metrics, step, epoch, loss=None):
        """Record one evaluation (metrics in percent); True if it is a new best."""
        self.history.append({"step": step, "epoch": epoch, "metrics": metrics, "loss": loss})
        if self.best is not None and metrics[self.key] <= self.best["metrics"][self.key]:
            return False
        self.best = {"metrics": metrics, "step": step, "epoch": epoch}
        if self.keep_state:  # for predicting with the best weights when they are not saved to disk
            self.state = {k: v.numpy().copy() for k, v in unwrap(model).state_dict().items()}
        return True

    def restore_best(self, model):
        if self.state is not None:
            unwrap(model).set_state_dict(self.state)


def reseed_for_step(seed, step):
    """Seed Paddle's generator from (seed, step) after every optimizer step, so the dropout masks of a step
    do not depend on the steps before it: a run resumed at step k draws what the uninterrupted run drew.
    Only where the CPU generator's position cannot be saved (Paddle 2.6: its state keeps only the seed);
    elsewhere the resume checkpoint holds the generators' positions (resume.positions_saved) and a run
    draws upstream's stream throughout. The first step draws from the stream paddle.seed(seed) started."""
    paddle.seed(int.from_bytes(hashlib.sha256(f"{seed}:{step}".encode()).digest()[:7], "little"))


def train_loop(
    model,
    loader,
    compute_loss,
    optimizer,
    scheduler,
    *,
    total_steps,
    epochs,
    gas,
    logging_steps,
    log_template,
    evaluate,
    eval_steps=None,
    rank=0,
    seed=None,
    checkpoint=None,
    progress=None,
    on_log=None,
    precision=None,
):
    """Run optimizer steps until total_steps; returns {"steps", "examples", "train_time_s"}.

    compute_loss(model, batch) -> scalar loss. evaluate(step, epoch) is called every eval_steps
    optimizer steps and at the last step, or after every epoch when eval_steps is None.
    log_template fields: step, total, epoch, batch (0-based), batch1, rank, loss, lr, speed.
    seed: reseed Paddle after every step (reseed_for_step; None: never, as upstream); checkpoint: a resume.Checkpointer, told of
    every update; progress: where a resumed run goes on; on_log(step, loss, lr) at every logged step;
    precision: a precision.Precision (--use_amp), fp32 without one.
    """
    precision = precision or Precision()
    model.train()
    progress = dict(progress or {"epoch": 0, "batch": 0, "step": 0, "examples": 0, "train_time_s": 0.0})
    step, examples, train_time = progress["step"], progress["examples"], progress["train_time_s"]
    sync_free = model.no_sync if isinstance(model, paddle.DataParallel) else contextlib.nullcontext
    n_batches = len(loader)
    tic = last_log = time.time()
    logged_at = step
    if seed is not None and step:
        reseed_for_step(seed, step)

    def updated(epoch, next_batch, evaluated):
        if checkpoint is not None:
            checkpoint.after_update(
                {
                    "epoch": epoch,
                    "batch": next_batch,
                    "step": step,
                    "examples": examples,
                    "train_time_s": train_time + time.time() - tic,
                },
                evaluated,
            )

    for epoch in range(progress["epoch"], epochs):
        if step >= total_steps:
            break
        first = progress["batch"] if epoch == progress["epoch"] else 0
        for batch_index, batch in loader.epoch(epoch, first):
            group_start = batch_index - batch_index % gas
            group_size = min(gas, n_batches - group_start)
            updates = batch_index - group_start + 1 == group_size
            with contextlib.nullcontext() if updates else sync_free():
                with precision.autocast():
                    loss = compute_loss(model, batch)
                precision.backward(loss / group_size if group_size > 1 else loss)
            examples += len(batch["input_ids"])
            if not updates:
                continue
            precision.step(optimizer)
            scheduler.step()
            optimizer.clear_grad()
            step += 1
            if seed is not None:
                reseed_for_step(seed, step)
            if step % logging_steps == 0:
                now, value = time.time(), float(loss)
                logger.info(
                    log_template.format(
                        step=step,
                        total=total_steps,
                        epoch=epoch,
                        batch=batch_index,
                        batch1=batch_index + 1,
                        rank=rank,
                        loss=value,
                        lr=scheduler.get_lr(),
                        speed=(step - logged_at) / max(now - last_log, 1e-9),
                    )
                )
                if on_log is not None:
                    on_log(step, value, scheduler.get_lr())
                last_log, logged_at = now, step
            evaluated = bool(eval_steps) and (step % eval_steps == 0 or step == total_steps)
            if evaluated:
                train_time += time.time() - tic
                evaluate(step, epoch)
                tic = last_log = time.time()
            updated(epoch, batch_index + 1, evaluated)
            if step >= total_steps:
                break
        if eval_steps is None:
            train_time += time.time() - tic
            evaluate(step, epoch)
            tic = last_log = time.time()
            updated(epoch + 1, 0, True)
    train_time += time.time() - tic
    return {"steps": step, "examples": examples, "train_time_s": train_time}
