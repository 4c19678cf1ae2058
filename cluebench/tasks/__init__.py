"""The task registry: every fact about a task in one place. It imports no Paddle, so the grid tools and
the scheduler start without it.

Each task says its family (classification, span, choice or cloze), its files per split (under
DATA_DIR/<task>_public/), where the download comes from, its labels, how a classification record
becomes text, its leaderboard file per test split, its metric, its rows of the hyper-parameter grid,
what the scheduler estimates its size from, and the settings the grid wrappers use. The modules that
read these facts (classification, mrc, grid, extract, synthetic, the warm-up tool, the wrappers
through `python -m cluebench.tasks`) keep no list of their own; tests/test_tasks.py checks them.

Adding a classification task of an existing text form is one entry here, its synthetic data
(synthetic.write_task covers the text forms) and a test: see BUSTM, which is not in the default grid.

What a task's data means is its family's module, `module(name)`: classification (the eight classification
tasks), cmrc2018 (span), c3 (choice), chid (cloze). Every one has the same functions and constants, so that
the readers, the download, the feature cache, make_submission and check_submission never branch on a task's
name or family (tests/test_tasks.py checks the interface):

    read(task, split, data_dir)            the examples of a split (a test split's unlabelled, with its ids)
    test_file(task, split, data_dir)       the path of a test split's file, the one check_submission reads
    expected_answers(task, examples)       {str(id): (the id as the test file has it, choices or None)}: 0 and
                                           "0" are one id to the leaderboard; choices: what an answer indexes
                                           into (C3's choices of the question, CHID's candidates of the row)
    answer_problem(task, answer, choices)  why a predicted answer is not valid for the task, or None
    PREDICTION_FORM                        the leaderboard file's form: "lines" (JSON lines {"id", "label"})
                                           or "object" (one JSON object of id -> answer)
    PREDICTION_KEY                         what messages call an answer's key: "id", or "blank" (CHID)
    PREDICTION_ENTRY                       one entry as messages show it, e.g. "question id: answer"
    write_predictions(path, ...)           writes the leaderboard file in that form (the arguments are what
                                           the task's script has: examples and labels, tags and choices, answers)

and the reading-comprehension modules (their features are cached by cluebench.tasks.features):

    from_huggingface(rows, split, paths)   HuggingFace `clue` rows of a split written as its official files
    FEATURE_VERSION                        bumped when the features change: old caches are then ignored
    FEATURE_COLUMNS                        the columns the features hold: a cache with another is rebuilt
"""

import dataclasses
import importlib
import sys


@dataclasses.dataclass(frozen=True)
class ClassificationGrid:
    """Upstream's rows for a classification task: every learning rate x batch size x setting."""

    settings: tuple  # (epochs, max_seq_length, gradient accumulation, dropout) rows
    learning_rates: tuple = (1e-5, 2e-5, 3e-5, 5e-5)
    batch_sizes: tuple = (16, 32, 64)
    extra_batch_sizes: tuple = ()  # after all tasks' main rows, in upstream's order (CLUEWSC2020's batch 8)


@dataclasses.dataclass(frozen=True)
class ReadingGrid:
    """Upstream's rows for a reading-comprehension task (learning rate x global batch size)."""

    max_seq_length: int
    epochs: int
    warmup_proportion: float  # what run_mrc.sh passes
    cards: int  # the upstream README's card count; the scheduler takes fewer when fewer are free
    accumulation: int | None = None  # gradient accumulation steps; None: half the batch size (C3)
    learning_rates: tuple = (1e-5, 2e-5, 3e-5)
    batch_sizes: tuple = (32, 24)

    def accumulation_for(self, batch_size):
        return batch_size // 2 if self.accumulation is None else self.accumulation


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    family: str  # "classification", "span" (CMRC2018), "choice" (C3) or "cloze" (CHID)
    files: dict  # split -> file names in <task>_public/; a split whose name starts with "test" is predicted
    predictions: dict  # test split -> leaderboard file name
    optional_splits: tuple = ()  # present in the official archive, optional in a local data_dir
    labels: tuple = ()  # classification: the class list, in the order class ids follow
    text: tuple = ()  # classification: ("single", field), ("pair", field, field), ("keywords",), ("wsc",)
    dash_label: bool = False  # examples labelled "-" (no annotator majority) are dropped, and counted
    metric: str = "acc"  # "acc", or "em_f1" (best_result: EM/F1)
    download: tuple = ()  # (PaddleNLP builder, {our split: its split}) or ("huggingface", {...})
    choices: int = 1  # sequences per example: 4 for C3, 10 for CHID
    train_examples: int = 0  # official training-set size (CMRC2018 in windows, CHID in blanks): job sizes
    grid: object = None  # ClassificationGrid or ReadingGrid; None: not in the default grid

    @property
    def is_classification(self):
        return self.family == "classification"


def _builder(name, *splits):
    return (name, {split: split for split in splits})


# In the grid's order (upstream's): the classification tasks, then CHID, CMRC2018, C3.
REGISTRY = {
    t.name: t
    for t in (
        Task(
            "afqmc",
            "classification",
            {"train": ("train.json",), "dev": ("dev.json",), "test": ("test.json",)},
            {"test": "afqmc_predict.json"},
            labels=("0", "1"),
            text=("pair", "sentence1", "sentence2"),
            download=_builder("clue", "train", "dev", "test"),
            train_examples=34334,
            grid=ClassificationGrid(((3, 128, 1, 0.1),)),
        ),
        Task(
            "tnews",
            "classification",
            {"train": ("train.json",), "dev": ("dev.json",), "test": ("test.json",), "test1.0": ("test1.0.json",)},
            {"test": "tnews11_predict.json", "test1.0": "tnews10_predict.json"},
            optional_splits=("test1.0",),
            labels=(
                "100",
                "101",
                "102",
                "103",
                "104",
                "106",
                "107",
                "108",
                "109",
                "110",
                "112",
                "113",
                "114",
                "115",
                "116",
            ),
            text=("single", "sentence"),
            download=_builder("clue", "train", "dev", "test", "test1.0"),
            train_examples=53360,
            grid=ClassificationGrid(((3, 128, 1, 0.1),)),
        ),
        Task(
            "iflytek",
            "classification",
            {"train": ("train.json",), "dev": ("dev.json",), "test": ("test.json",)},
            {"test": "iflytek_predict.json"},
            labels=tuple(str(i) for i in range(119)),
            text=("single", "sentence"),
            download=_builder("clue", "train", "dev", "test"),
            train_examples=12133,
            grid=ClassificationGrid(((3, 128, 1, 0.1), (3, 128, 1, 0.0))),
        ),
        Task(
            "ocnli",
            "classification",
            {"train": ("train.50k.json",), "dev": ("dev.json",), "test": ("test.json",)},
            {"test": "ocnli_50k_predict.json"},
            labels=("entailment", "contradiction", "neutral"),
            text=("pair", "sentence1", "sentence2"),
            dash_label=True,
            download=_builder("clue", "train", "dev", "test"),
            train_examples=50437,
            grid=ClassificationGrid(((5, 128, 1, 0.1),)),
        ),
        Task(
            "cmnli",
            "classification",
            {"train": ("train.json",), "dev": ("dev.json",), "test": ("test.json",)},
            {"test": "cmnli_predict.json"},
            labels=("contradiction", "entailment", "neutral"),
            text=("pair", "sentence1", "sentence2"),
            dash_label=True,
            download=_builder("clue", "train", "dev", "test"),
            train_examples=391783,
            grid=ClassificationGrid(((2, 128, 1, 0.1),)),
        ),
        Task(
            "cluewsc2020",
            "classification",
            {"train": ("train.json",), "dev": ("dev.json",), "test": ("test.json",), "test1.0": ("test1.0.json",)},
            {"test": "cluewsc11_predict.json", "test1.0": "cluewsc10_predict.json"},
            optional_splits=("test1.0",),
            labels=("true", "false"),
            text=("wsc",),
            download=_builder("clue", "train", "dev", "test", "test1.0"),
            train_examples=1244,
            grid=ClassificationGrid(((50, 128, 1, 0.1), (50, 128, 1, 0.0)), extra_batch_sizes=(8,)),
        ),
        Task(
            "csl",
            "classification",
            {"train": ("train.json",), "dev": ("dev.json",), "test": ("test.json",)},
            {"test": "csl_predict.json"},
            labels=("0", "1"),
            text=("keywords",),
            download=_builder("clue", "train", "dev", "test"),
            train_examples=20000,
            grid=ClassificationGrid(((5, 256, 2, 0.1),)),
        ),
        Task(
            "chid",
            "cloze",
            {
                "train": ("train.json", "train_answer.json"),
                "dev": ("dev.json", "dev_answer.json"),
                "test1.1": ("test1.1.json",),
                "test1.0": ("test1.0.json",),
            },
            {"test1.1": "chid11_predict.json", "test1.0": "chid10_predict.json"},
            optional_splits=("test1.0",),
            download=("huggingface", {"train": "train", "dev": "validation", "test1.1": "test"}),
            choices=10,
            train_examples=577157,
            grid=ReadingGrid(64, 3, 0.06, cards=4, accumulation=8),
        ),
        Task(
            "cmrc2018",
            "span",
            {"train": ("train.json",), "dev": ("dev.json",), "test": ("test.json",)},
            {"test": "cmrc2018_predict.json"},
            metric="em_f1",
            download=("huggingface", {"train": "train", "dev": "validation", "test": "test"}),
            train_examples=13185,
            grid=ReadingGrid(512, 2, 0.1, cards=2, accumulation=4),
        ),
        Task(
            "c3",
            "choice",
            {
                "train": ("d-train.json", "m-train.json"),
                "dev": ("d-dev.json", "m-dev.json"),
                "test1.1": ("test1.1.json",),
                "test1.0": ("test1.0.json",),
            },
            {"test1.1": "c311_predict.json", "test1.0": "c310_predict.json"},
            optional_splits=("test1.0",),
            download=("huggingface", {"train": "train", "dev": "validation", "test1.1": "test"}),
            choices=4,
            train_examples=11869,
            grid=ReadingGrid(512, 8, 0.1, cards=4),
        ),
        # FewCLUE's BUSTM (short-text pair matching): not in the default grid.
        Task(
            "bustm",
            "classification",
            {"train": ("train_few_all.json",), "dev": ("dev_few_all.json",), "test": ("test_public.json",)},
            {"test": "bustm_predict.json"},
            labels=("0", "1"),
            text=("pair", "sentence1", "sentence2"),
            download=("fewclue", {"train": "train_few_all", "dev": "dev_few_all", "test": "test_public"}),
            train_examples=32,
        ),
    )
}

# upstream extract_result.sh's column order
# The largest valid prediction file of the real CLUE test sets is CMRC2018's, about 5.6 MB at most (2,000
# answers, each as long as its whole context in \uXXXX escapes). A file or zip member over 64 MiB is no
# prediction file: make_submission does not copy it, check_submission does not read (nor inflate) it.
MAX_PREDICTION_BYTES = 64 << 20
REPORT_ORDER = ("afqmc", "tnews", "iflytek", "cmnli", "ocnli", "cluewsc2020", "csl", "cmrc2018", "chid", "c3")


def get(name):
    return REGISTRY[name]


# family -> the module of cluebench.tasks that knows its data (the interface above)
FAMILY_MODULES = {"classification": "classification", "span": "cmrc2018", "choice": "c3", "cloze": "chid"}


def module(name):
    """The task's module, by its family; imported at first use (the modules import this registry)."""
    return importlib.import_module(f"{__name__}.{FAMILY_MODULES[REGISTRY[name].family]}")


def names(family=None, in_grid=None):
    """Task names in registry order, of one family ("classification" or "reading" for the other three)
    and/or only those with (in_grid=True) or without grid rows."""
    return tuple(
        t.name
        for t in REGISTRY.values()
        if (
            family is None
            or (
                t.is_classification
                if family == "classification"
                else not t.is_classification
                if family == "reading"
                else t.family == family
            )
        )
        and (in_grid is None or (t.grid is not None) == in_grid)
    )


CLASSIFICATION = names("classification")
READING = names("reading")


def main(argv):
    """For the wrappers: `python -m cluebench.tasks names classification|reading` (the task names) and
    `python -m cluebench.tasks wrapper TASK` (max_seq_length epochs warmup of a reading task)."""
    if len(argv) == 2 and argv[0] == "names" and argv[1] in ("classification", "reading"):
        print(" ".join(names(argv[1])))
    elif len(argv) == 2 and argv[0] == "wrapper" and argv[1] in READING:
        g = REGISTRY[argv[1]].grid
        print(g.max_seq_length, g.epochs, g.warmup_proportion)
    else:
        sys.exit("usage: python -m cluebench.tasks names classification|reading | wrapper TASK")
