"""What the three reading-comprehension scripts share: their flags, cached features and batches, the
part of a run (runner.TaskRun) that is the same for the three."""
import argparse

import numpy as np
import paddle

from . import setup, precision, resume, runner
from ..tasks import reading
from .. import results
from .fast_tokenizer import TextEncoder
from ..fileio import check_writable, clean_leftovers


def parser(description, **defaults):
    """The flags of the upstream MRC scripts; `defaults` sets the per-script values."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model_name_or_path", required=True, help="built-in model name or local directory")
    p.add_argument("--data_dir", default=None, help="local files in the official layout (<task>_public/)")
    p.add_argument("--output_dir", default=defaults["output_dir"])
    p.add_argument("--results_file", default=None, help=f"results record; default OUTPUT_DIR/{results.FILENAME}")
    p.add_argument("--save_best_model", type=setup.strtobool, default=True)
    p.add_argument("--overwrite_cache", type=setup.strtobool, default=False, help="rebuild the cached features")
    p.add_argument("--cache_dir", default=None, help=f"feature cache (default {reading.default_cache_dir()})")
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
    p.add_argument("--to_static", type=setup.strtobool, default=True,
                   help="run the model as one static program (paddle.jit.to_static): the same numbers, 2-4x "
                        "faster steps on a CPU; false: the eager path")
    p.add_argument("--logdir", default=None, help="VisualDL log folder (train loss, learning rate, dev metrics)")
    precision.add_flag(p)
    resume.add_flags(p)
    return p


class ReadingRun(runner.TaskRun):
    """What the three reading-comprehension tasks share: the feature cache, batches of its columns,
    one dev evaluation per epoch, --max_steps 0 as the warm-up that only builds the features."""
    unit = "features"
    label_names = ("labels",)

    @property
    def script(self):
        return f"run_{self.task}.py"

    def check(self, rank):
        """The cache and output folders, before any work; the download when no --data_dir is given."""
        args = self.args
        args.cache_dir = args.cache_dir or reading.default_cache_dir()
        check_writable(args.cache_dir, "cache directory")
        check_writable(args.output_dir)  # again when claimed; here so that it fails before features are built
        if args.data_dir is None:  # upstream's path: HuggingFace's clue data set, downloaded
            args.data_dir = reading.download(self.task)
        if rank == 0:
            clean_leftovers(args.cache_dir)  # .tmp files of killed runs

    def prediction_splits(self):
        return reading.prediction_splits(self.task, self.args.data_dir)

    def split_files(self, split):
        return reading.split_files(self.task, split, self.args.data_dir)

    def build(self, split, examples, encoder):
        """The features of a split's examples (store.Features)."""
        raise NotImplementedError

    def read(self, split, tokenizer, world_size):
        return features(self.args, self.task, split, tokenizer, world_size=world_size,
                        doc_stride=getattr(self.args, "doc_stride", None),
                        build=lambda examples, encoder: self.build(split, examples, encoder))

    def train_collate(self, feats, tokenizer):
        return make_collate(feats, tokenizer.pad_token_id, self.label_names)

    def outputs(self, model, feats, tokenizer, per_token=False):
        """The model's outputs for every feature, in order (runner.forward_sorted)."""
        return runner.forward_sorted(model, feats.lengths(), self.args.eval_batch_size,
                                     make_collate(feats, tokenizer.pad_token_id, []), per_token,
                                     self.precision.autocast)


def features(args, task, split, tokenizer, build, world_size, doc_stride=None):
    """(examples, features) of a split: rank 0 builds or loads the cache first, the others then load it.

    Test splits are for rank 0 alone (it alone predicts): call them with world_size=1.
    """
    examples = reading.load_examples(task, split, args.data_dir)
    key = reading.cache_key(task, split, reading.split_files(task, split, args.data_dir), tokenizer,
                        args.max_seq_length, doc_stride)
    encoder = TextEncoder(tokenizer)

    def get(overwrite):
        return reading.cached_features(key, lambda: build(examples, encoder), args.cache_dir, overwrite)

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
