"""cluebench.train.flags: the flags the four argparse scripts share, declared once with each script's upstream
defaults; the --do_ flags each run names; the Trainer script's checks taken from the same rule table."""

import argparse
import dataclasses

from cluebench.fileio import DataError
from cluebench.train import flags
from helpers import load_script

import pytest
from paddlenlp.trainer import TrainingArguments

CLASSIFIER = load_script("classification/run_clue_classifier.py")
SCRIPTS = {
    "classification/run_clue_classifier.py": (CLASSIFIER, CLASSIFIER.ClassifierRun, ["--task_name", "tnews"]),
    **{
        f"mrc/run_{task}.py": (module, run, [])
        for task, run_name in (("cmrc2018", "CmrcRun"), ("chid", "ChidRun"), ("c3", "C3Run"))
        for module in [load_script(f"mrc/run_{task}.py")]
        for run in [getattr(module, run_name)]
    },
}

# The upstream PaddleNLP scripts' defaults where they differ between scripts; every script must keep its own.
DEFAULTS = {  # output_dir, max_seq_length, batch_size, learning_rate, weight_decay, adam_epsilon,
    # num_train_epochs, gradient_accumulation_steps, warmup_proportion
    "classification/run_clue_classifier.py": ("best_clue_model", 128, 32, 1e-4, 0.0, 1e-6, 3, 1, 0.1),
    "mrc/run_cmrc2018.py": ("best_cmrc_model", 128, 8, 5e-5, 0.01, 1e-8, 3, 2, 0.1),
    "mrc/run_chid.py": ("best_chid_model", 64, 4, 2e-5, 0.0, 1e-6, 3, 1, 0.1),
    "mrc/run_c3.py": ("best_c3_model", 512, 24, 2e-5, 0.01, 1e-6, 8, 4, 0.1),
}
NAMES = (
    "output_dir",
    "max_seq_length",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "adam_epsilon",
    "num_train_epochs",
    "gradient_accumulation_steps",
    "warmup_proportion",
)
SAME_EVERYWHERE = {
    "max_grad_norm": 1.0,
    "max_steps": -1,
    "warmup_steps": 0,
    "logging_steps": 100,
    "seed": 42,
    "device": "gpu",
    "save_best_model": True,
    "to_static": True,
    "use_amp": "off",
    "resume": "auto",
    "checkpoint_minutes": 30,
    "break_lock": None,
    "data_dir": None,
    "results_file": None,
    "logdir": None,
    "do_train": False,
    "do_predict": False,
}


def parsed(script):
    module, _, extra = SCRIPTS[script]
    return module.parse_args(["--model_name_or_path", "some-model", *extra])


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_script_keeps_its_upstream_defaults(script):
    args = vars(parsed(script))
    assert tuple(args[name] for name in NAMES) == DEFAULTS[script]
    assert {name: args[name] for name in SAME_EVERYWHERE} == SAME_EVERYWHERE


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_run_names_the_do_flags_its_script_has(script):
    """The runner asks the TaskRun which --do_ flags there are (no guessing): they are the parser's."""
    _, run, _ = SCRIPTS[script]
    actions = {flag for flag in vars(parsed(script)) if flag in (flags.TRAIN, flags.EVAL, flags.PREDICT)}
    assert set(run.do_flags) == actions
    assert (flags.EVAL in run.do_flags) == script.startswith("classification/")
    assert not run(parsed(script)).asked(flags.EVAL)  # a reading run asks no args.do_eval, which they lack
    if flags.EVAL in run.do_flags:
        module, _, extra = SCRIPTS[script]
        assert run(module.parse_args(["--model_name_or_path", "m", "--do_eval", *extra])).asked(flags.EVAL)


def test_the_trainer_is_checked_by_the_same_rules():
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    ours = {flag: (ok, must) for flag, ok, must in flags.RULES}
    for flag, rule in flags.TRAINER_FLAGS:
        assert flag in fields, flag
        if isinstance(rule, str):  # shared: the very same test and words
            assert dict((f, (ok, must)) for f, ok, must in flags.trainer_rules())[flag] == ours[rule]


@pytest.mark.parametrize(
    "value, line",
    [
        (0, "--per_device_train_batch_size 0: must be at least 1"),
        (float("nan"), "--per_device_train_batch_size nan: must be a finite number"),
    ],
)
def test_a_trainer_rule_says_the_trainer_flag(value, line):
    args = argparse.Namespace(per_device_train_batch_size=value)
    with pytest.raises(DataError) as error:
        flags.check_numbers(args, flags.trainer_rules())
    assert str(error.value) == line
