"""The flags the training scripts share, declared once, and the rules they are checked by, next to them.

The four argparse scripts (run_clue_classifier.py and the three reading-comprehension scripts) get their
common flags from add_training_flags(), with the per-script defaults of the upstream scripts; each adds its
own flags itself. The Trainer script (PaddleNLP's dataclass arguments) is checked by the same RULES under
its own names (trainer_rules()). A bad flag is one DataError, `--flag value: what it must be`, which
setup.exit_cleanly turns into one line and exit status 2.
"""

import math
import os

from .. import results
from ..fileio import DataError
from . import precision, resume

# The --do_ flags: every script has TRAIN and PREDICT; the classifier scripts have EVAL as well.
TRAIN, EVAL, PREDICT = "do_train", "do_eval", "do_predict"


def strtobool(value):
    """The y/yes/t/true/on/1 vs n/no/f/false/off/0 booleans of the upstream flags."""
    text = str(value).strip().lower()
    if text in ("y", "yes", "t", "true", "on", "1"):
        return True
    if text in ("n", "no", "f", "false", "off", "0"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def flag_error(flag, value, message):
    """A bad flag, said as `--flag value: message` (exit status 2 through setup.exit_cleanly)."""
    return DataError(f"--{flag} {value}", message)


def add_training_flags(
    p,
    *,
    do_flags,
    output_dir,
    max_seq_length,
    batch_size,
    learning_rate,
    weight_decay,
    adam_epsilon,
    num_train_epochs,
    gradient_accumulation_steps,
    warmup_proportion=0.1,
    zero_steps_ok,
    data_dir_help,
    output_dir_help=None,
):
    """Add the flags the argparse scripts share to parser p, with a script's upstream defaults.
    do_flags: its --do_ flags (of TRAIN, EVAL, PREDICT); zero_steps_ok: whether --max_steps 0 is its
    "build the features, take no step" warm-up (said in --help)."""
    p.add_argument("--model_name_or_path", required=True, help="built-in model name or local directory")
    p.add_argument("--data_dir", default=None, help=data_dir_help)
    p.add_argument("--output_dir", default=output_dir, help=output_dir_help)
    p.add_argument("--results_file", default=None, help=f"results record; default OUTPUT_DIR/{results.FILENAME}")
    p.add_argument("--save_best_model", type=strtobool, default=True)
    p.add_argument("--max_seq_length", type=int, default=max_seq_length)
    p.add_argument("--batch_size", type=int, default=batch_size, help="effective batch per card")
    p.add_argument("--learning_rate", type=float, default=learning_rate)
    p.add_argument("--weight_decay", type=float, default=weight_decay)
    p.add_argument("--adam_epsilon", type=float, default=adam_epsilon)
    p.add_argument("--max_grad_norm", type=float, default=1.0)
    p.add_argument("--num_train_epochs", type=int, default=num_train_epochs)
    p.add_argument(
        "--max_steps",
        type=int,
        default=-1,
        help=">= 0 overrides epochs; 0 trains no step" if zero_steps_ok else "> 0: optimizer steps, overrides epochs",
    )
    p.add_argument("--warmup_steps", type=int, default=0)
    p.add_argument("--warmup_proportion", type=float, default=warmup_proportion)
    p.add_argument("--logging_steps", type=int, default=100)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="gpu", help="cpu, gpu or xpu")
    p.add_argument("--gradient_accumulation_steps", type=int, default=gradient_accumulation_steps)
    for flag in do_flags:
        p.add_argument(f"--{flag}", action="store_true")
    p.add_argument(
        "--to_static",
        type=strtobool,
        default=True,
        help="run the model as one static program (paddle.jit.to_static): the same numbers, 2-4x "
        "faster steps on a CPU; false: the eager path",
    )
    p.add_argument("--logdir", default=None, help="VisualDL log folder (train loss, learning rate, dev metrics)")
    precision.add_flag(p)
    resume.add_flags(p)
    return p


# Checked on whichever of these flags a script has: (flag, test, what it must be).
RULES = [
    ("seed", lambda v: 0 <= v < 2**32, "must be between 0 and 2**32 - 1"),
    ("batch_size", lambda v: v > 0, "must be at least 1"),
    ("eval_batch_size", lambda v: v > 0, "must be at least 1"),
    ("gradient_accumulation_steps", lambda v: v > 0, "must be at least 1"),
    ("learning_rate", lambda v: v > 0, "must be positive"),
    ("logging_steps", lambda v: v > 0, "must be at least 1"),
    ("save_steps", lambda v: v > 0, "must be at least 1"),
    ("max_seq_length", lambda v: v > 0, "must be at least 1"),
    ("doc_stride", lambda v: v > 0, "must be at least 1 (the tokens between two window starts)"),
    ("n_best_size", lambda v: v > 0, "must be at least 1"),
    ("max_answer_length", lambda v: v > 0, "must be at least 1"),
    ("adam_epsilon", lambda v: v > 0, "must be positive"),
    ("weight_decay", lambda v: v >= 0, "must not be negative"),
    ("warmup_steps", lambda v: v >= 0, "must not be negative"),
    ("warmup_proportion", lambda v: 0 <= v <= 1, "must be between 0 and 1"),
    ("max_grad_norm", lambda v: v >= 0, "must not be negative (0 turns clipping off)"),
    ("dropout", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("checkpoint_minutes", lambda v: v >= 0, "must not be negative (0: checkpoints at evaluations only)"),
]

# The Trainer script's flags (PaddleNLP accepts zeros, negatives and nan there that fail, or train nothing,
# hours later), in the order checked: each with the name of the RULES entry it shares, or its own rule.
TRAINER_FLAGS = [
    ("per_device_train_batch_size", "batch_size"),
    ("per_device_eval_batch_size", "eval_batch_size"),
    ("gradient_accumulation_steps", "gradient_accumulation_steps"),
    ("logging_steps", "logging_steps"),
    ("save_steps", "save_steps"),
    ("learning_rate", "learning_rate"),
    ("adam_epsilon", "adam_epsilon"),
    ("weight_decay", "weight_decay"),
    ("max_grad_norm", (lambda v: v >= 0, "must not be negative")),  # the Trainer's line has always read so
    ("num_train_epochs", (lambda v: v >= 0, "must not be negative")),  # a float there; 0 with --max_steps
    ("seed", "seed"),
]


def rules_for(names):
    """RULES' entries for these flags, in the order given."""
    by_name = {flag: (ok, must) for flag, ok, must in RULES}
    return [(flag, *by_name[flag]) for flag in names]


def trainer_rules():
    """(flag, test, what it must be) for the Trainer script's TrainingArguments (TRAINER_FLAGS)."""
    by_name = {flag: (ok, must) for flag, ok, must in RULES}
    return [(flag, *(by_name[rule] if isinstance(rule, str) else rule)) for flag, rule in TRAINER_FLAGS]


def check_numbers(args, rules):
    """rules: (flag, test, what it must be), checked on those of the flags that args holds (a parsed
    Namespace or a dataclass of arguments). nan and inf train nothing."""
    given = vars(args)
    for flag, ok, must in rules:
        value = given.get(flag)
        if value is not None and not (math.isfinite(value) and ok(value)):
            raise flag_error(flag, value, must if math.isfinite(value) else "must be a finite number")


def check_something_to_do(args, do_flags):
    """Some of the script's --do_ flags (do_flags: those it has) is given; the line names only those."""
    if not any(getattr(args, f) for f in do_flags):
        named = [f"--{f}" for f in do_flags]
        raise DataError("flags", f"nothing to do: give {', '.join(named[:-1])} and/or {named[-1]}")


def check_training_flags(args, do_flags, zero_steps_ok=False):
    """The shared flags of an argparse script (and whichever of RULES' its own), before any work: one
    DataError naming the first bad one. do_flags: its --do_ flags. zero_steps_ok: --max_steps 0 means
    "build the features, take no step" (the MRC scripts' warm-up)."""
    check_numbers(args, RULES)
    check_something_to_do(args, do_flags)
    if (
        args.do_train
        and args.save_best_model
        and os.path.isdir(args.model_name_or_path)
        and os.path.realpath(args.output_dir) == os.path.realpath(args.model_name_or_path)
    ):
        raise flag_error(
            "output_dir",
            args.output_dir,
            "is the model's own folder: saving would overwrite the pretrained weights; choose another --output_dir",
        )
    gas = args.gradient_accumulation_steps
    if args.batch_size % gas:
        raise flag_error(
            "batch_size",
            args.batch_size,
            f"must be divisible by --gradient_accumulation_steps {gas} (it is the effective batch)",
        )
    steps_given = args.max_steps > 0 or args.max_steps == 0 and zero_steps_ok
    if args.do_train and not steps_given and args.num_train_epochs < 1:
        raise flag_error("num_train_epochs", args.num_train_epochs, "must be at least 1 to train (or give --max_steps)")
