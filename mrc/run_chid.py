"""Fine-tune, evaluate and predict a PaddleNLP model on CHID (idiom cloze, ten candidates per blank).

Flags and log lines follow the upstream PaddleNLP script; see the README for what is fixed.
"""
import time

import cluebench  # noqa: F401  first: it sets up the process before paddle is imported

import numpy as np
from paddlenlp.transformers import AutoModelForMultipleChoice
from paddlenlp.utils.log import logger

from cluebench.fileio import DataError, write_json
from cluebench import cli, mrc, results, training
from cluebench.mrc_training import (check_args, features, finish, fit, forward_sorted, make_collate,
                                    output_path, parser, prepare, setup)

TASK = "chid"


def parse_args(argv=None):
    p = parser(__doc__, output_dir="best_chid_model", max_seq_length=64, batch_size=4, eval_batch_size=24,
               learning_rate=2e-5, weight_decay=0.0, adam_epsilon=1e-6, num_train_epochs=3,
               gradient_accumulation_steps=1)
    return check_args(p.parse_args(argv), TASK)


compute_loss = training.cross_entropy_loss


def assign(model, feats, batch_size, collate):
    """Candidate index per blank, decoded best-first over all blanks of each passage group."""
    logits = forward_sorted(model, feats, batch_size, collate)
    chosen = np.empty(len(feats), np.int64)
    rows = feats["row"]
    for row in np.unique(rows):
        blanks = np.flatnonzero(rows == row)
        chosen[blanks] = mrc.chid_assign(logits[blanks])
    return chosen


def main(argv=None):
    args = parse_args(argv)
    rank, world_size = setup(args)
    # at least [CLS] idiom [SEP] [unused1] one context token [SEP], for 4-token idioms
    tokenizer, model = cli.load_pretrained(AutoModelForMultipleChoice, args.model_name_or_path, args.max_seq_length,
                                           min_seq_length=9, num_choices=mrc.CHID_CANDIDATES)
    if tokenizer.convert_tokens_to_ids(mrc.CHID_MARKER) == tokenizer.unk_token_id:
        raise DataError(args.model_name_or_path, f"the vocabulary has no {mrc.CHID_MARKER}, the token of the blank")

    def split_features(split, ranks=world_size):
        path = mrc.split_files(TASK, split, args.data_dir)[0]
        return features(args, TASK, split, tokenizer, world_size=ranks,
                        build=lambda rows, encoder: mrc.chid_features(rows, encoder, args.max_seq_length, path))

    tracker, stats, data, written = None, None, {}, []
    splits = prepare(args, TASK, split_features, rank)
    with cli.claim_output_dir(args.output_dir, results.record_path(args), rank=rank):
        if args.do_train:
            train_feats, dev_feats = splits["train"][1], splits["dev"][1]
            dev_collate = make_collate(dev_feats, tokenizer.pad_token_id, [])

            def evaluate(model, step, epoch):
                tic = time.time()
                accuracy = float((assign(model, dev_feats, args.eval_batch_size, dev_collate)
                                  == dev_feats["labels"]).mean())
                logger.info(f"eval acc: {accuracy:.5f}, eval done total : {time.time() - tic} s")
                return {"acc": 100 * accuracy}

            model, tracker, stats = fit(
                args, TASK, model, tokenizer, train_feats, make_collate(train_feats, tokenizer.pad_token_id, ["labels"]),
                compute_loss, evaluate, "acc", rank=rank, world_size=world_size,
                log_template="global step {step}/{total}, epoch: {epoch}, batch: {batch1}, loss: {loss:.5f}, "
                             "speed: {speed:.2f} step/s")
            data = {"train_blanks": len(train_feats), "dev_blanks": len(dev_feats)}
        if rank != 0:
            return
        if args.do_predict:  # keyed by the blank tags of the test file itself
            for split, name in mrc.prediction_splits(TASK, args.data_dir):
                feats = splits[split][1]
                chosen = assign(model, feats, args.eval_batch_size, make_collate(feats, tokenizer.pad_token_id, []))
                path = output_path(args, name)
                write_json(path, {str(tag): int(c) for tag, c in zip(feats["tag"], chosen)}, indent=2)
                logger.info(f"wrote {len(chosen)} blanks for {split} to {path}")
                written.append(path)
        finish(args, TASK, tracker, stats, data, written, {"acc": 0.0})


if __name__ == "__main__":
    cli.run(main)
