"""Fine-tune, evaluate and predict a PaddleNLP model on C3 (multiple choice over four answers).

Flags and log lines follow the upstream PaddleNLP script; see the README for what is fixed.
"""
import json
import time

import cluebench  # noqa: F401  first: it sets up the process before paddle is imported

from paddlenlp.transformers import AutoModelForMultipleChoice
from paddlenlp.utils.log import logger

from cluebench import cli, mrc, results, training
from cluebench.fileio import atomic_write
from cluebench.mrc_training import (check_args, features, finish, fit, forward_sorted, make_collate,
                                    output_path, parser, prepare, setup)

TASK = "c3"


def parse_args(argv=None):
    p = parser(__doc__, output_dir="best_c3_model", max_seq_length=512, batch_size=24, eval_batch_size=32,
               learning_rate=2e-5, weight_decay=0.01, adam_epsilon=1e-6, num_train_epochs=8,
               gradient_accumulation_steps=4)
    return check_args(p.parse_args(argv), TASK)


compute_loss = training.cross_entropy_loss


def main(argv=None):
    args = parse_args(argv)
    rank, world_size = setup(args)
    # at least [CLS] context [SEP] question [SEP] choice [SEP] with one token each
    tokenizer, model = cli.load_pretrained(AutoModelForMultipleChoice, args.model_name_or_path, args.max_seq_length,
                                           min_seq_length=7, num_choices=mrc.C3_CHOICES)

    def split_features(split, ranks=world_size):
        return features(args, TASK, split, tokenizer, world_size=ranks,
                        build=lambda examples, encoder: mrc.c3_features(examples, encoder, args.max_seq_length))

    def choices(model, feats):
        collate = make_collate(feats, tokenizer.pad_token_id, [])
        return forward_sorted(model, feats, args.eval_batch_size, collate).argmax(-1)

    tracker, stats, data, written = None, None, {}, []
    splits = prepare(args, TASK, split_features, rank)
    with cli.claim_output_dir(args.output_dir, results.record_path(args), rank=rank):
        if args.do_train:
            train_feats, dev_feats = splits["train"][1], splits["dev"][1]

            def evaluate(model, step, epoch):
                tic = time.time()
                accuracy = float((choices(model, dev_feats) == dev_feats["labels"]).mean())
                logger.info(f"eval acc: {accuracy:.5f}, eval done total : {time.time() - tic} s")
                return {"acc": 100 * accuracy}

            model, tracker, stats = fit(
                args, TASK, model, tokenizer, train_feats, make_collate(train_feats, tokenizer.pad_token_id, ["labels"]),
                compute_loss, evaluate, "acc", rank=rank, world_size=world_size,
                log_template="global step {step}/{total}, epoch: {epoch}, batch: {batch1}, rank_id: {rank}, "
                             "loss: {loss:f}, lr: {lr:.10f}, speed: {speed:.4f} step/s")
            data = {"train_questions": len(train_feats), "dev_questions": len(dev_feats)}
        if rank != 0:
            return
        if args.do_predict:  # with the best dev weights when trained in this run
            for split, name in mrc.prediction_splits(TASK, args.data_dir):
                examples, feats = splits[split]
                path = output_path(args, name)
                with atomic_write(path) as f:
                    for example, choice in zip(examples, choices(model, feats)):
                        f.write(json.dumps({"id": example.id, "label": int(choice)}) + "\n")
                logger.info(f"wrote {len(examples)} answers for {split} to {path}")
                written.append(path)
        finish(args, TASK, tracker, stats, data, written, {"acc": 0.0})


if __name__ == "__main__":
    cli.run(main)
