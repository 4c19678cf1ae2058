"""Fine-tune, evaluate and predict a PaddleNLP model on CMRC2018 (span extraction).

Flags and log lines follow the upstream PaddleNLP script; see the README for what is fixed.
"""

import json
import os
import time

import cluebench  # noqa: F401  first: it sets up the process before paddle is imported
from cluebench.tasks import cmrc2018, reading
from cluebench.train import loop, runner, setup
from cluebench.train.cmrc_metric import cmrc_scores
from cluebench.train.reading import ReadingRun, parser

from paddlenlp.transformers import AutoModelForQuestionAnswering
from paddlenlp.utils.log import logger


def parse_args(argv=None):
    p = parser(
        __doc__,
        output_dir="best_cmrc_model",
        max_seq_length=128,
        batch_size=8,
        eval_batch_size=12,
        learning_rate=5e-5,
        weight_decay=0.01,
        adam_epsilon=1e-8,
        num_train_epochs=3,
        gradient_accumulation_steps=2,
    )
    p.add_argument("--doc_stride", type=int, default=128, help="tokens between the starts of two windows")
    p.add_argument("--n_best_size", type=int, default=20)
    p.add_argument("--max_query_length", type=int, default=64, help="unused, as upstream: questions are kept whole")
    p.add_argument("--max_answer_length", type=int, default=50, help="in tokens")
    p.add_argument("--do_lower_case", action="store_false", help="unused, as upstream")
    p.add_argument("--verbose", action="store_true", help="unused, as upstream")
    p.add_argument(
        "--cmrc2018_metric",
        choices=("upstream", "official"),
        default="upstream",
        help="upstream: PaddleNLP's squad_evaluate as the original scripts; official: the CMRC2018 script",
    )
    return p.parse_args(argv)


class CmrcRun(ReadingRun):
    task = "cmrc2018"
    key = "em"
    zero_metrics = {"em": 0.0, "f1": 0.0}
    label_names = ("start_positions", "end_positions")
    log_template = (
        "global step {step}/{total}, epoch: {epoch}, batch: {batch1}, loss: {loss:f}, speed: {speed:.2f} step/s"
    )

    compute_loss = staticmethod(loop.span_loss)

    def doc_stride(self):
        return self.args.doc_stride

    def load_model(self):
        # at least [CLS] q [SEP] c [SEP]; a longer question is named by the feature builder
        return setup.load_pretrained(
            AutoModelForQuestionAnswering, self.args.model_name_or_path, self.args.max_seq_length, min_seq_length=5
        )

    def build(self, split, examples, encoder):  # answer positions are labels of train only
        path = reading.split_files(self.task, split, self.args.data_dir)[0]
        return reading.cmrc_features(
            examples, encoder, self.args.max_seq_length, self.args.doc_stride, split == "train", path
        )

    def answers(self, model, examples, feats, tokenizer):
        starts, ends = self.outputs(model, feats, tokenizer, per_token=True)
        return reading.cmrc_answers(examples, feats, starts, ends, self.args.n_best_size, self.args.max_answer_length)

    def evaluate(self, model, examples, feats, tokenizer):
        tic = time.time()
        predictions = self.answers(model, examples, feats, tokenizer)
        cmrc2018.write_predictions(os.path.join(self.args.output_dir, "prediction_validation.json"), predictions)
        scores = cmrc_scores({e.id: e.answers for e in examples}, predictions, self.args.cmrc2018_metric)
        if self.args.cmrc2018_metric == "official":
            logger.info(json.dumps({"exact": scores["em"], "f1": scores["f1"], "total": len(examples)}, indent=2))
        logger.info(f"eval done total : {time.time() - tic} s")
        return scores, None

    def predict(self, model, split, examples, feats, tokenizer, path):
        cmrc2018.write_predictions(path, self.answers(model, examples, feats, tokenizer))
        logger.info(f"wrote {len(examples)} answers for {split} to {path}")

    def data_counts(self, splits):
        return {
            "train_features": len(splits["train"][1]),
            "dev_questions": len(splits["dev"][0]),
            "dev_features": len(splits["dev"][1]),
            "metric": self.args.cmrc2018_metric,
        }


def main(argv=None):
    args = parse_args(argv)
    runner.run(args, CmrcRun(args))


if __name__ == "__main__":
    setup.exit_cleanly(main)
