"""Without --data_dir, the classification scripts read what upstream reads: PaddleNLP's download of the
CLUE (or FewCLUE) archive, in PaddleNLP's cache. (The reading-comprehension download is HuggingFace's,
written in the official layout: cluebench.tasks.download.)"""

from .. import tasks
from ..fileio import DataError
from ..tasks import classification


def split_file(task, split, data_dir=None):
    """The split's file under data_dir, else from PaddleNLP's download."""
    if data_dir is not None:
        return classification.split_file(task, split, data_dir)
    source, splits = tasks.get(task).download  # PaddleNLP's builder and its name of the split
    from paddlenlp.datasets import clue, fewclue

    builder = {"clue": clue.Clue, "fewclue": fewclue.FewCLUE}[source]
    try:
        return builder(name=task)._get_data(splits[split])
    except Exception as e:  # offline, or the mirror is gone: one line, not a retry traceback
        raise DataError(
            f"PaddleNLP {source}/{task}",
            f"download failed ({type(e).__name__}); pass --data_dir with the official {task}_public files",
        ) from None


def load_split(task, split, data_dir=None):
    """(examples, dropped) of a split, local or downloaded."""
    return classification.read_split(task, split, split_file(task, split, data_dir))
