"""Fine-tune, evaluate and predict a PaddleNLP model on CMRC2018 (span extraction).

Flags and log lines follow the upstream PaddleNLP script; see the README for what is fixed.
"""
import json
import time

import cluebench  # noqa: F401  first: it sets up the process before paddle is imported

import paddle.nn.functional as F
from paddlenlp.transformers import AutoModelForQuestionAnswering
from paddlenlp.utils.log import logger

from cluebench.fileio import write_json
from cluebench import cli, mrc, results
from cluebench.cmrc_metric import cmrc_scores
from cluebench.mrc_training import (check_args, features, finish, fit, forward_sorted, make_collate,
                                    output_path, parser, prepare, setup)

TASK = "cmrc2018"


def parse_args(argv=None):
    p = parser(__doc__, output_dir="best_cmrc_model", max_seq_length=128, batch_size=8, eval_batch_size=12,
               learning_rate=5e-5, weight_decay=0.01, adam_epsilon=1e-8, num_train_epochs=3,
               gradient_accumulation_steps=2)
    p.add_argument("--doc_stride", type=int, default=128, help="tokens between the starts of two windows")
    p.add_argument("--n_best_size", type=int, default=20)
    p.add_argument("--max_query_length", type=int, default=64, help="unused, as upstream: questions are kept whole")
    p.add_argument("--max_answer_length", type=int, default=50, help="in tokens")
    p.add_argument("--do_lower_case", action="store_false", help="unused, as upstream")
    p.add_argument("--verbose", action="store_true", help="unused, as upstream")
    p.add_argument("--cmrc2018_metric", choices=("upstream", "official"), default="upstream",
                   help="upstream: PaddleNLP's squad_evaluate as the original scripts; official: the CMRC2018 script")
    return check_args(p.parse_args(argv), TASK)


def compute_loss(model, batch):
    start_logits, end_logits = model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"])
    return (F.cross_entropy(start_logits, batch["start_positions"]) +
            F.cross_entropy(end_logits, batch["end_positions"])) / 2


def main(argv=None):
    args = parse_args(argv)
    rank, world_size = setup(args)
    # at least [CLS] q [SEP] c [SEP]; a longer question is named by the feature builder
    tokenizer, model = cli.load_pretrained(AutoModelForQuestionAnswering, args.model_name_or_path,
                                           args.max_seq_length, min_seq_length=5)

    def split_features(split, ranks=world_size):  # answer positions are labels of train only
        path = mrc.split_files(TASK, split, args.data_dir)[0]
        return features(args, TASK, split, tokenizer, world_size=ranks, doc_stride=args.doc_stride,
                        build=lambda examples, encoder: mrc.cmrc_features(
                            examples, encoder, args.max_seq_length, args.doc_stride, split == "train", path))

    def answers(model, examples, feats):
        collate = make_collate(feats, tokenizer.pad_token_id, [])
        starts, ends = forward_sorted(model, feats, args.eval_batch_size, collate, per_token=True)
        return mrc.cmrc_answers(examples, feats, starts, ends, args.n_best_size, args.max_answer_length)

    tracker, stats, data, written = None, None, {}, []
    splits = prepare(args, TASK, split_features, rank)
    with cli.claim_output_dir(args.output_dir, results.record_path(args), rank=rank):
        if args.do_train:
            train_feats = splits["train"][1]
            dev_examples, dev_feats = splits["dev"]
            references = {e.id: e.answers for e in dev_examples}

            def evaluate(model, step, epoch):
                tic = time.time()
                predictions = answers(model, dev_examples, dev_feats)
                write_json(output_path(args, "prediction_validation.json"), predictions, ensure_ascii=False,
                           indent=4)
                scores = cmrc_scores(references, predictions, args.cmrc2018_metric)
                if args.cmrc2018_metric == "official":
                    logger.info(json.dumps({"exact": scores["em"], "f1": scores["f1"], "total": len(references)},
                                           indent=2))
                logger.info(f"eval done total : {time.time() - tic} s")
                return scores

            model, tracker, stats = fit(
                args, TASK, model, tokenizer, train_feats,
                make_collate(train_feats, tokenizer.pad_token_id, ["start_positions", "end_positions"]),
                compute_loss, evaluate, "em", rank=rank, world_size=world_size,
                log_template="global step {step}/{total}, epoch: {epoch}, batch: {batch1}, loss: {loss:f}, "
                             "speed: {speed:.2f} step/s")
            data = {"train_features": len(train_feats), "dev_questions": len(dev_examples),
                    "dev_features": len(dev_feats), "metric": args.cmrc2018_metric}
        if rank != 0:
            return
        if args.do_predict:  # with the best dev weights when trained in this run
            for split, name in mrc.prediction_splits(TASK, args.data_dir):
                examples, feats = splits[split]
                path = output_path(args, name)
                write_json(path, answers(model, examples, feats), ensure_ascii=False, indent=4)
                logger.info(f"wrote {len(examples)} answers for {split} to {path}")
                written.append(path)
        finish(args, TASK, tracker, stats, data, written, {"em": 0.0, "f1": 0.0})


if __name__ == "__main__":
    cli.run(main)
