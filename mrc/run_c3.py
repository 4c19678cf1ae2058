"""Fine-tune, evaluate and predict a PaddleNLP model on C3 (multiple choice over four answers).

Flags and log lines follow the upstream PaddleNLP script; see the README for what is fixed.
"""

import time

import cluebench  # noqa: F401  first: it sets up the process before paddle is imported
from cluebench.tasks import c3, reading
from cluebench.train import runner, setup
from cluebench.train.reading import ReadingRun, parser

import numpy as np
from paddlenlp.transformers import AutoModelForMultipleChoice
from paddlenlp.utils.log import logger


def parse_args(argv=None):
    return parser(
        __doc__,
        output_dir="best_c3_model",
        max_seq_length=512,
        batch_size=24,
        eval_batch_size=32,
        learning_rate=2e-5,
        weight_decay=0.01,
        adam_epsilon=1e-6,
        num_train_epochs=8,
        gradient_accumulation_steps=4,
    ).parse_args(argv)


class C3Run(ReadingRun):
    task = "c3"
    choices = reading.C3_CHOICES
    log_template = (
        "global step {step}/{total}, epoch: {epoch}, batch: {batch1}, rank_id: {rank}, "
        "loss: {loss:f}, lr: {lr:.10f}, speed: {speed:.4f} step/s"
    )

    def load_model(self):
        # at least [CLS] context [SEP] question [SEP] choice [SEP] with one token each
        return setup.load_pretrained(
            AutoModelForMultipleChoice,
            self.args.model_name_or_path,
            self.args.max_seq_length,
            min_seq_length=7,
            num_choices=reading.C3_CHOICES,
        )

    def build(self, split, examples, encoder):
        return reading.c3_features(examples, encoder, self.args.max_seq_length)

    def choose(self, model, examples, feats, tokenizer):
        """The best of each question's own choices: a filler choice (padding to four) is never an answer."""
        logits = self.outputs(model, feats, tokenizer)
        logits[np.arange(reading.C3_CHOICES) >= np.array([[e.given] for e in examples])] = -np.inf
        return logits.argmax(-1)

    def evaluate(self, model, examples, feats, tokenizer):
        tic = time.time()
        accuracy = float((self.choose(model, examples, feats, tokenizer) == feats["labels"]).mean())
        logger.info(f"eval acc: {accuracy:.5f}, eval done total : {time.time() - tic} s")
        return {"acc": 100 * accuracy}, None

    def predict(self, model, split, examples, feats, tokenizer, path):
        c3.write_predictions(path, examples, self.choose(model, examples, feats, tokenizer))
        logger.info(f"wrote {len(examples)} answers for {split} to {path}")

    def data_counts(self, splits):
        return {"train_questions": len(splits["train"][1]), "dev_questions": len(splits["dev"][1])}


def main(argv=None):
    args = parse_args(argv)
    runner.run(args, C3Run(args))


if __name__ == "__main__":
    setup.exit_cleanly(main)
