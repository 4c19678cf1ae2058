"""What one job of the grid needs: GPU memory, host memory and CPU threads, from the model's own shape,
and, once a job of the same shape has run, from what NVML saw it use.

No Paddle here: the scheduler reads the shape from the model's config.json (a local directory) or asks
PaddleNLP's AutoConfig in a child process (a built-in name; offline, a few seconds, once per grid).

The estimate, per process (one rank of a job), fp32 training with AdamW:
  * states: 16 bytes a parameter (weights, gradients, AdamW's two moments);
  * activations kept for the backward pass, per layer and token: 34h + 8i bytes for the projections,
    layer norms, GELU and dropout masks, and 9·a·s for attention's scores, softmax and dropout
    (the count of Korthikanti et al., "Reducing Activation Recomputation", in 4-byte floats);
  * the CUDA context with cuBLAS/cuDNN workspaces (0.8 GiB), and 15% for the allocator's slack.
Host memory: 2 GiB for a Paddle process with its data, plus the weights twice (read, then copied).
"""

import dataclasses
import json
import math
import os
import subprocess
import sys

from .. import tasks
from ..fileio import write_json

GIB = 1 << 30
CONFIG_NAMES = ("config.json", "model_config.json")
MAX_CONFIG_BYTES = 1 << 20
CUDA_CONTEXT_GIB = 0.8
ALLOCATOR_SLACK = 1.15
PROCESS_HOST_GIB = 2.0
LAUNCHER_HOST_GIB = 0.5  # paddle.distributed.launch's own process, for a multi-card job
LEARN_AFTER_S = 60  # a job's memory is read once it has run this long (its first steps are done)
LEARNED_MARGIN = 1.1  # a learned footprint is claimed with 10% to spare
FOOTPRINTS = "footprints.json"
# the resume checkpoint (weights, AdamW's moments, the best weights) written at this rate on a
# network disk, after the step under way ends: what a stop must wait for
CHECKPOINT_BYTES_PER_PARAM = 16
DISK_BYTES_PER_S = 50e6
STOP_GRACE_BASE_S = 30


@dataclasses.dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    intermediate: int
    vocab: int
    heads: int
    positions: int = 512
    type_vocab: int = 2
    task_types: int = 0  # ERNIE 3.0's task-type embedding (use_task_id)
    source: str = "base-size default"

    @property
    def parameters(self):
        h, i = self.hidden, self.intermediate
        embeddings = (self.vocab + self.positions + self.type_vocab + self.task_types) * h + 2 * h
        layer = 4 * h * h + 4 * h + 2 * h * i + h + i + 4 * h  # attention, feed-forward, two layer norms
        return embeddings + self.layers * layer + h * h + h  # and the pooler

    def describe(self):
        return (
            f"{self.layers} layers, hidden {self.hidden}, {self.parameters / 1e6:.0f}M parameters (from {self.source})"
        )


BASE = Shape(12, 768, 3072, 21128, 12)  # bert-base-chinese: what is assumed when nothing else is known
SHAPE_FIELDS = {
    "layers": "num_hidden_layers",
    "hidden": "hidden_size",
    "intermediate": "intermediate_size",
    "vocab": "vocab_size",
    "heads": "num_attention_heads",
    "positions": "max_position_embeddings",
    "type_vocab": "type_vocab_size",
}


class ShapeError(ValueError):
    pass


def shape_from_config(config, source):
    """A Shape from a model config dict (PaddleNLP's config.json, or the `init_args` of an older
    model_config.json); a missing or impossible field is a ShapeError naming it."""
    if isinstance(config.get("init_args"), list) and config["init_args"] and isinstance(config["init_args"][0], dict):
        config = config["init_args"][0]
    values = {}
    for name, key in SHAPE_FIELDS.items():
        value = config.get(key)
        if value is None and name == "intermediate":
            value = 4 * values["hidden"]  # the configs that leave it out mean the usual 4h
        elif value is None and name in ("positions", "type_vocab"):
            value = getattr(BASE, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10**7:
            raise ShapeError(f"{source}: field '{key}' is {value!r}, not a positive integer")
        values[name] = value
    if config.get("use_task_id"):
        values["task_types"] = config.get("task_type_vocab_size", 3)
        if (
            isinstance(values["task_types"], bool)
            or not isinstance(values["task_types"], int)
            or not 0 <= values["task_types"] < 10**4
        ):
            raise ShapeError(f"{source}: field 'task_type_vocab_size' is {values['task_types']!r}, not a count")
    return Shape(**values, source=source)


def _read_config(directory):
    for name in CONFIG_NAMES:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        if os.path.getsize(path) > MAX_CONFIG_BYTES:
            raise ShapeError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes, not a model config")
        try:
            with open(path, "rb") as f:
                config = json.loads(f.read(MAX_CONFIG_BYTES).decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ShapeError(f"{path}: not a readable JSON config ({e})") from None
        if not isinstance(config, dict):
            raise ShapeError(f"{path}: not a JSON object")
        return shape_from_config(config, path)
    raise ShapeError(f"{directory}: no {' or '.join(CONFIG_NAMES)}")


def model_shape(model, python=sys.executable, timeout=120):
    """(Shape, warning or None). A local directory's config; a built-in name's from PaddleNLP in a child
    process; else the base size, with the reason in the warning (the grid still runs, claiming a
    base model's memory, and learns the real footprint from its first jobs)."""
    try:
        if os.path.isdir(model):
            return _read_config(model), None
        code = (
            "import json, sys\nfrom paddlenlp.transformers import AutoConfig\n"
            "print(json.dumps(AutoConfig.from_pretrained(sys.argv[1]).to_dict()))"
        )
        done = subprocess.run(
            [python, "-c", code, model],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ShapeError(f"PaddleNLP has no config for {model!r} ({last[:200]})")
        return shape_from_config(json.loads(done.stdout.strip().splitlines()[-1]), f"PaddleNLP's {model}"), None
    except (ShapeError, subprocess.TimeoutExpired, json.JSONDecodeError, IndexError, OSError) as e:
        return BASE, f"{e}; claiming the memory of a base-size model until jobs have shown theirs"


def micro_batch(job, cards):
    """Examples one process holds per forward pass (the batch over cards, then over accumulation steps)."""
    per_card = job.batch_size // cards
    return per_card // (job.accumulation // cards if job.is_reading else job.accumulation)


def key(job, cards):
    """Jobs of one shape use the same memory: task (its choices), micro-batch, sequence length, cards."""
    return f"{job.task}/{micro_batch(job, cards)}/{job.max_seq_length}/{cards}"


def gpu_gib(shape, job, cards=1):
    """Estimated GPU memory of one process of the job."""
    sequences = micro_batch(job, cards) * tasks.get(job.task).choices
    s, h, i, a = job.max_seq_length, shape.hidden, shape.intermediate, shape.heads
    activations = shape.layers * sequences * s * (34 * h + 8 * i + 9 * a * s)
    states = 16 * shape.parameters
    return CUDA_CONTEXT_GIB + (states + activations) * ALLOCATOR_SLACK / GIB


def host_gib(shape, cards=1):
    """Estimated host memory of the whole job: its processes and, with several cards, the launcher."""
    per_process = PROCESS_HOST_GIB + 8 * shape.parameters / GIB
    return cards * per_process + (LAUNCHER_HOST_GIB if cards > 1 else 0.0)


def stop_grace(shape):
    """Seconds a stopped job is given to write its resume checkpoint before it is killed."""
    return math.ceil(STOP_GRACE_BASE_S + CHECKPOINT_BYTES_PER_PARAM * shape.parameters / DISK_BYTES_PER_S)


class Footprints:
    """The claims of a grid's jobs: the estimate of the model's shape until NVML has shown a job of the
    same shape, then that (the largest seen, with a margin). Kept in RUN_DIR/footprints.json, so a
    restarted grid starts from what it learned."""

    def __init__(self, shape=BASE, path=None):
        self.shape, self.path = shape, path
        self.learned = self._load()

    def _load(self):
        if not self.path or not os.path.isfile(self.path) or os.path.getsize(self.path) > MAX_CONFIG_BYTES:
            return {}
        try:
            with open(self.path, "rb") as f:
                saved = json.loads(f.read(MAX_CONFIG_BYTES))
        except (OSError, ValueError):
            return {}  # a file cut short or not ours: learning starts again
        if (
            not isinstance(saved, dict)
            or not isinstance(saved.get("learned"), dict)
            or saved.get("shape") != self._dimensions()
        ):
            return {}  # another model's, or no footprints at all
        return {
            k: float(v)
            for k, v in saved["learned"].items()
            if isinstance(k, str) and isinstance(v, (int, float)) and 0 < v < 1e4
        }

    def _dimensions(self):
        return {k: v for k, v in dataclasses.asdict(self.shape).items() if k != "source"}

    def gpu(self, job, cards=1):
        learned = self.learned.get(key(job, cards))
        return learned * LEARNED_MARGIN if learned else gpu_gib(self.shape, job, cards)

    def host(self, job, cards=1):
        return host_gib(self.shape, cards)

    def learn(self, job, cards, used_gib):
        """Record a process's GPU memory as NVML saw it; True if it is more than what was known."""
        k = key(job, cards)
        if used_gib <= self.learned.get(k, 0.0):
            return False
        self.learned[k] = round(used_gib, 3)
        if self.path:
            try:
                write_json(self.path, {"shape": self._dimensions(), "learned": self.learned}, indent=1)
            except OSError:
                pass  # a full disk costs the next grid what it learned, not this one
        return True
