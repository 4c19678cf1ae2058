"""Fine-tune, evaluate and predict a PaddleNLP model on CHID (idiom cloze, ten candidates per blank).

Flags and log lines follow the upstream PaddleNLP script; see the README for what is fixed.
"""

import time

import cluebench  # noqa: F401  first: it sets up the process before paddle is imported
from cluebench.fileio import DataError
from cluebench.tasks import chid, reading
from cluebench.train import runner, setup
from cluebench.train.reading import ReadingRun, parser

import numpy as np
from paddlenlp.transformers import AutoModelForMultipleChoice
from paddlenlp.utils.log import logger


def parse_args(argv=None):
    return parser(
        __doc__,
        output_dir="best_chid_model",
        max_seq_length=64,
        batch_size=4,
        eval_batch_size=24,
        learning_rate=2e-5,
        weight_decay=0.0,
        adam_epsilon=1e-6,
        num_train_epochs=3,
        gradient_accumulation_steps=1,
    ).parse_args(argv)


class ChidRun(ReadingRun):
    task = "chid"
    choices = reading.CHID_CANDIDATES
    log_template = (
        "global step {step}/{total}, epoch: {epoch}, batch: {batch1}, loss: {loss:.5f}, speed: {speed:.2f} step/s"
    )

    def load_model(self):
        # at least [CLS] idiom [SEP] [unused1] one context token [SEP], for 4-token idioms
        tokenizer, model = setup.load_pretrained(
            AutoModelForMultipleChoice,
            self.args.model_name_or_path,
            self.args.max_seq_length,
            min_seq_length=9,
            num_choices=reading.CHID_CANDIDATES,
        )
        if tokenizer.convert_tokens_to_ids(reading.CHID_MARKER) == tokenizer.unk_token_id:
            raise DataError(
                self.args.model_name_or_path, f"the vocabulary has no {reading.CHID_MARKER}, the token of the blank"
            )
        return tokenizer, model

    def build(self, split, rows, encoder):
        path = reading.split_files(self.task, split, self.args.data_dir)[0]
        return reading.chid_features(rows, encoder, self.args.max_seq_length, path)

    def assign(self, model, feats, tokenizer):
        """Candidate index per blank, decoded best-first over all blanks of each passage group."""
        logits = self.outputs(model, feats, tokenizer)
        chosen = np.empty(len(feats), np.int64)
        rows = feats["row"]
        for row in np.unique(rows):
            blanks = np.flatnonzero(rows == row)
            chosen[blanks] = reading.chid_assign(logits[blanks])
        return chosen

    def evaluate(self, model, examples, feats, tokenizer):
        tic = time.time()
        accuracy = float((self.assign(model, feats, tokenizer) == feats["labels"]).mean())
        logger.info(f"eval acc: {accuracy:.5f}, eval done total : {time.time() - tic} s")
        return {"acc": 100 * accuracy}, None

    def predict(self, model, split, examples, feats, tokenizer, path):  # keyed by the test file's blank tags
        chosen = self.assign(model, feats, tokenizer)
        chid.write_predictions(path, feats["tag"], chosen)
        logger.info(f"wrote {len(chosen)} blanks for {split} to {path}")

    def data_counts(self, splits):
        return {"train_blanks": len(splits["train"][1]), "dev_blanks": len(splits["dev"][1])}


def main(argv=None):
    args = parse_args(argv)
    runner.run(args, ChidRun(args))


if __name__ == "__main__":
    setup.exit_cleanly(main)
