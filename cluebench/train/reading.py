"""What the three reading-comprehension scripts share: their flags, cached features and batches, the
part of a run (runner.TaskRun) that is the same for the three."""

import argparse

import numpy as np
import paddle

from ..fileio import check_writable, clean_leftovers
from ..tasks import reading
from . import flags, runner
from .fast_tokenizer import TextEncoder

DO_FLAGS = (flags.TRAIN, flags.PREDICT)  # no --do_eval: every training run evaluates on dev


def parser(description, *, eval_batch_size, **defaults):
    """The flags of the upstream MRC scripts: the shared ones (flags.add_training_flags, `defaults` its
    per-script values) and the reading-comprehension ones; a script adds its own."""
    p = argparse.ArgumentParser(description=description)
    flags.add_training_flags(
        p,
        do_flags=DO_FLAGS,
        zero_steps_ok=ReadingRun.zero_steps_ok,
        data_dir_help="local files in the official layout (<task>_public/)",
        **defaults,
    )
    p.add_argument("--overwrite_cache", type=flags.strtobool, default=False, help="rebuild the cached features")
    p.add_argument("--cache_dir", default=None, help=f"feature cache (default {reading.default_cache_dir()})")
    p.add_argument(
        "--num_proc",
        type=int,
        default=None,
        help="accepted for upstream command lines; features are built by the Rust tokenizer",
    )
    p.add_argument("--eval_batch_size", type=int, default=eval_batch_size)
    return p


class ReadingRun(runner.TaskRun):
    """What the three reading-comprehension tasks share: the feature cache, batches of its columns,
    one dev evaluation per epoch, --max_steps 0 as the warm-up that only builds the features."""

    do_flags = DO_FLAGS
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

    def doc_stride(self):
        """The tokens between two windows of one example (part of the cache key); None: one window each."""
        return None

    def prediction_splits(self):
        return reading.prediction_splits(self.task, self.args.data_dir)

    def split_files(self, split):
        return reading.split_files(self.task, split, self.args.data_dir)

    def build(self, split, examples, encoder):
        """The features of a split's examples (store.Features)."""
        raise NotImplementedError

    def read(self, split, tokenizer, world_size):
        return features(
            self.args,
            self.task,
            split,
            tokenizer,
            world_size=world_size,
            doc_stride=self.doc_stride(),
            build=lambda examples, encoder: self.build(split, examples, encoder),
        )

    def train_collate(self, feats, tokenizer):
        return make_collate(feats, tokenizer.pad_token_id, self.label_names)

    def outputs(self, model, feats, tokenizer, per_token=False):
        """The model's outputs for every feature, in order (runner.forward_sorted)."""
        return runner.forward_sorted(
            model,
            feats.lengths(),
            self.args.eval_batch_size,
            make_collate(feats, tokenizer.pad_token_id, []),
            per_token,
            self.precision.autocast,
        )


def features(args, task, split, tokenizer, build, world_size, doc_stride=None):
    """(examples, features) of a split: rank 0 builds or loads the cache first, the others then load it.

    Test splits are for rank 0 alone (it alone predicts): call them with world_size=1.
    """
    examples = reading.load_examples(task, split, args.data_dir)
    key = reading.cache_key(
        task, split, reading.split_files(task, split, args.data_dir), tokenizer, args.max_seq_length, doc_stride
    )
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
                ids[b, g, : len(row)] = row
                if type_row is not None:
                    types[b, g, : len(type_row)] = type_row
        if feats.group == 1:
            ids, types = ids[:, 0], types[:, 0]
        batch = {"input_ids": ids, "token_type_ids": types}
        for name in label_names:
            batch[name] = np.asarray(feats[name][np.asarray(indices)], np.int64)
        return batch

    return collate
