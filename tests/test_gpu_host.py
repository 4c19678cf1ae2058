"""The grid on a GPU host, with a fake NVML and a fake psutil: claims from the model's shape and from
what NVML saw, host memory and CPU threads, cards in CUDA's order and the user's terms, every form of
out-of-memory."""

import collections
import json

from cluebench.grid import footprint, scheduler as grid
from helpers import load_script
from test_grid import FakeNVML, cls_job, fake_host, make

import pytest

# the shapes of three published models, as their config.json has them
CONFIGS = {
    "bert-base-chinese": {
        "num_hidden_layers": 12,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "vocab_size": 21128,
        "num_attention_heads": 12,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
    },
    "ernie-3.0-medium-zh": {
        "num_hidden_layers": 6,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "vocab_size": 40000,
        "num_attention_heads": 12,
        "max_position_embeddings": 2048,
        "type_vocab_size": 4,
        "use_task_id": True,
        "task_type_vocab_size": 16,
    },
    "roberta-wwm-ext-large": {
        "num_hidden_layers": 24,
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "vocab_size": 21128,
        "num_attention_heads": 16,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
    },
}


@pytest.fixture
def models(tmp_path):
    """{name: a local model directory holding only that config.json}."""
    found = {}
    for name, config in CONFIGS.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(config))
        found[name] = str(tmp_path / name)
    return found


def shape_of(directory):
    shape, warning = footprint.model_shape(directory)
    assert warning is None
    return shape


def test_claims_follow_the_model(models):
    base, medium, large = (shape_of(models[n]) for n in CONFIGS)
    # the published sizes: 102M, 75M (ERNIE 3.0 Medium) and 326M parameters
    assert [round(s.parameters / 1e6, 1) for s in (base, medium, large)] == [102.3, 75.4, 325.5]
    job = cls_job()  # TNEWS, batch 32 at length 128
    claims = [footprint.gpu_gib(s, job) for s in (base, medium, large)]
    # ~6 GiB for base (weights and AdamW 1.5 GiB, activations 3 GiB); the old constant formula said 7.0
    # for every model: about twice the medium model's need, and less than half the large one's
    assert [round(c, 1) for c in claims] == [5.9, 3.8, 15.4]
    assert claims[2] > 16 * large.parameters / footprint.GIB  # at least its weights, gradients and moments
    assert [round(footprint.host_gib(s), 1) for s in (base, medium, large)] == [2.8, 2.6, 4.4]
    # a 4-card C3 job: each process holds a quarter of the micro-batches, all the states, plus the launcher
    c3 = grid.Job("c3", 1e-5, 24, 12, 0.1, 8, 512)
    assert footprint.micro_batch(c3, 4) == 2 and footprint.host_gib(medium, 4) == pytest.approx(
        4 * footprint.host_gib(medium) + footprint.LAUNCHER_HOST_GIB
    )
    # the resume checkpoint of a base model (1.6 GB) at 50 MB/s, after a step: about a minute
    assert [footprint.stop_grace(s) for s in (base, medium, large)] == [63, 55, 135]


def test_parameter_count_matches_paddlenlp(tiny_models):
    import paddle  # noqa: F401
    from paddlenlp.transformers import AutoModel

    for directory in tiny_models.values():
        model = AutoModel.from_pretrained(directory)
        assert shape_of(directory).parameters == sum(int(p.numel()) for p in model.parameters())


def test_a_model_without_a_readable_config_claims_base_size(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text('{"num_hidden_layers": "twelve"}')
    shape, warning = footprint.model_shape(str(tmp_path / "broken"))
    assert shape == footprint.BASE
    assert warning.startswith(f"{tmp_path / 'broken' / 'config.json'}: field 'num_hidden_layers' is 'twelve'")
    (tmp_path / "huge").mkdir()
    (tmp_path / "huge" / "config.json").write_bytes(b" " * (footprint.MAX_CONFIG_BYTES + 1))
    assert "larger than" in footprint.model_shape(str(tmp_path / "huge"))[1]


def first_round(tmp_path, model_dir, totals, jobs=None, **pool):
    """(jobs a card, GPU GiB claimed a card, host GiB claimed, OMP_NUM_THREADS) after the first round of
    the full grid on cards of `totals` GiB."""
    options = dict(dict(max_jobs_per_gpu=1, cores=64, host=fake_host(1024)), **pool)
    fp = footprint.Footprints(shape_of(model_dir))
    scheduler, launcher, _ = make(
        tmp_path, jobs or grid.full_grid(), FakeNVML(totals), duration=10**6, pool=dict(options, footprints=fp)
    )
    scheduler.sleep = lambda s: scheduler.request_stop(15)  # one round, then stop
    scheduler.run()
    per_card = collections.Counter(c for p in launcher.started for c in p.cards)
    claimed = collections.defaultdict(float)
    for p in launcher.started:
        job = launcher.job_of(p.argv)
        for c in p.cards:
            claimed[c] += fp.gpu(job, len(p.cards))
    host = sum(fp.host(launcher.job_of(p.argv), len(p.cards)) for p in launcher.started)
    return per_card, claimed, host, {p.env["OMP_NUM_THREADS"] for p in launcher.started}, launcher


def test_one_job_a_card_by_default_with_its_share_of_the_cores(tmp_path, models):
    per_card, _, _, threads, launcher = first_round(tmp_path, models["ernie-3.0-medium-zh"], [80] * 8)
    assert per_card == {c: 1 for c in range(8)} and threads == {"8"}  # 64 cores over 8 processes
    assert all(p.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" for p in launcher.started)


def test_packing_more_is_bounded_by_cards_host_memory_and_threads(tmp_path, models):
    medium, large = models["ernie-3.0-medium-zh"], models["roberta-wwm-ext-large"]
    per_card, claimed, _, threads, _ = first_round(tmp_path / "a", medium, [80] * 8, max_jobs_per_gpu=4)
    assert per_card == {c: 4 for c in range(8)} and threads == {"2"}
    # the 24-layer model: its jobs of 8 to 21 GiB fill a 32 GiB card to 31 GiB at most (the margin)
    per_card, claimed, _, _, _ = first_round(tmp_path / "b", large, [32] * 8, max_jobs_per_gpu=4)
    assert max(claimed.values()) <= 31 and all(per_card[c] <= 3 for c in range(8))
    # 20 GiB of host memory (2 kept free) holds 6 medium jobs of 2.6 GiB, though 32 places are free
    per_card, _, host, _, _ = first_round(tmp_path / "c", medium, [80] * 8, max_jobs_per_gpu=4, host=fake_host(20))
    assert sum(per_card.values()) == 6 and host <= 18
    # 4 cores for 8 cards: one thread a process, and no more processes at once than cores
    per_card, _, _, threads, _ = first_round(tmp_path / "d", medium, [80] * 8, cores=4)
    assert sum(per_card.values()) == 4 and threads == {"1"}


def test_a_job_bigger_than_any_card_by_the_estimate_runs_alone(tmp_path, models):
    large = shape_of(models["roberta-wwm-ext-large"])
    job = grid.Job("tnews", 2e-5, 128, 1, 0.1, 3, 128)
    assert footprint.gpu_gib(large, job) > 40
    scheduler, launcher, _ = make(
        tmp_path, [job, cls_job()], FakeNVML([40]), duration=3, pool=dict(footprints=footprint.Footprints(large))
    )
    assert scheduler.run() == 0
    assert [p.round for p in launcher.started] == [0, 3]  # it had the card to itself; the other waited


def test_a_learned_footprint_changes_later_placements(tmp_path, models):
    """The 24-layer estimate (15.4 GiB) allows one job on a 24 GiB card; after a minute NVML shows it using
    6 GiB, so it and later jobs of that shape claim 6.6 GiB, and two more run beside it."""
    fp = footprint.Footprints(shape_of(models["roberta-wwm-ext-large"]), str(tmp_path / "footprints.json"))
    jobs = [cls_job(lr=lr) for lr in (1e-5, 2e-5, 3e-5, 5e-5)]
    scheduler, launcher, lines = make(
        tmp_path, jobs, FakeNVML([24]), duration=4, memory_gib=6, pool=dict(footprints=fp)
    )
    scheduler.clock = lambda: launcher.round * 30.0
    assert scheduler.run() == 0
    assert [p.round for p in launcher.started] == [0, 2, 2, 4]
    assert (
        "> learned: a process of tnews 1e-05_32_0.1 on 1 card(s) uses 6.0 GiB; its shape (tnews/32/128/1) "
        "now claims 6.6 GiB" in lines
    )
    # kept for the next grid of this model; another model's footprints are not taken for its own
    assert footprint.Footprints(fp.shape, fp.path).learned == {"tnews/32/128/1": 6.0}
    assert footprint.Footprints(shape_of(models["bert-base-chinese"]), fp.path).learned == {}
    (tmp_path / "footprints.json").write_text("{not json")
    assert footprint.Footprints(fp.shape, fp.path).learned == {}


# ---------------------------------------------------------------- cards as the user sees them
SCRAMBLED = [3, 1, 0, 2]  # NVML's card h is the bus_order[h]-th by PCI bus id: CUDA's ordinal under PCI_BUS_ID


def test_jobs_get_cuda_ordinals_in_pci_bus_order(tmp_path):
    # NVML's card 0 (CUDA's 3 by bus id) is full: no job may be sent to ordinal 3, nor to NVML's "0"
    nvml = FakeNVML([32] * 4, used_gib=[31, 0, 0, 0], bus_order=SCRAMBLED)
    jobs = [cls_job(lr=lr) for lr in (1e-5, 2e-5, 3e-5, 5e-5)]
    scheduler, launcher, lines = make(tmp_path, jobs, nvml, duration=3, pool=dict(max_jobs_per_gpu=1))
    assert scheduler.run() == 0
    given = [p.env["CUDA_VISIBLE_DEVICES"] for p in launcher.started]
    assert sorted(given[:3]) == ["0", "1", "2"] and "3" not in given
    assert all(0 not in p.cards for p in launcher.started)  # NVML's full card was never used
    pool = grid.GpuPool(nvml, environ={}, host=fake_host())
    assert [c.ordinal for c in pool.cards] == [0, 1, 2, 3] and [c.handle for c in pool.cards] == [2, 1, 3, 0]


@pytest.mark.parametrize("visible, names", [("2,0", ["2", "0"]), (" 1 ", ["1"])])
def test_user_visible_devices_restrict_the_grid(tmp_path, visible, names):
    nvml = FakeNVML([32] * 4, bus_order=SCRAMBLED)
    jobs = [cls_job(lr=lr) for lr in (1e-5, 2e-5, 3e-5, 5e-5)]
    scheduler, launcher, _ = make(
        tmp_path, jobs, nvml, duration=2, pool=dict(max_jobs_per_gpu=1, environ={"CUDA_VISIBLE_DEVICES": visible})
    )
    assert scheduler.run() == 0
    assert {p.env["CUDA_VISIBLE_DEVICES"] for p in launcher.started} == set(names)
    assert {h for p in launcher.started for h in p.cards} == {SCRAMBLED.index(int(n)) for n in names}


def test_user_visible_devices_as_uuids_are_passed_as_uuids(tmp_path):
    nvml = FakeNVML([32] * 4, bus_order=SCRAMBLED)
    uuid = nvml.nvmlDeviceGetUUID(3)
    scheduler, launcher, _ = make(tmp_path, [cls_job()], nvml, pool=dict(environ={"CUDA_VISIBLE_DEVICES": uuid[:12]}))
    assert scheduler.run() == 0
    (process,) = launcher.started
    assert process.env["CUDA_VISIBLE_DEVICES"] == uuid and process.cards == [3]


@pytest.mark.parametrize(
    "visible, message",
    [
        ("", "CUDA_VISIBLE_DEVICES='' hides every card; unset it or name the cards to use"),
        ("0,7", "CUDA_VISIBLE_DEVICES='0,7': '7' matches no card; the cards are 0 (GPU-"),
        ("1,1", "CUDA_VISIBLE_DEVICES='1,1': '1' names card 1 twice"),
        ("GPU-", "CUDA_VISIBLE_DEVICES='GPU-': 'GPU-' matches several cards"),
        ("MIG-1234", "CUDA_VISIBLE_DEVICES='MIG-1234': MIG instances (MIG-1234) are not supported"),
    ],
)
def test_bad_visible_devices_are_one_line(visible, message):
    with pytest.raises(grid.SetupError) as error:
        grid.open_gpus(FakeNVML([32] * 4), environ={"CUDA_VISIBLE_DEVICES": visible}, host=fake_host())
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


# ---------------------------------------------------------------- every form of out-of-memory
OOM_TAILS = {
    "paddle": "RuntimeError: (ResourceExhausted) Out of memory error on GPU 0. Cannot allocate 1.2GB memory on "
    "GPU 0, 30.1GB memory has been allocated and available memory is only 0.9GB.\n",
    "paddle-short": '  File "run.py", line 9\nMemoryError: Out of memory error on GPU 3. Cannot allocate 256MB\n',
    "cuda": "RuntimeError: CUDA error(2), out of memory.\n  [Hint: 'cudaErrorMemoryAllocation'.]\n",
    "cuda-driver": "OSError: (External) CUDA error: CUDA_ERROR_OUT_OF_MEMORY\n",
    "cublas-alloc": "ExternalError: CUBLAS error(3).\n  [Hint: 'CUBLAS_STATUS_ALLOC_FAILED'. Resource allocation "
    "failed inside the cuBLAS library.]\n",
    "cublas-init": "ExternalError: CUBLAS error(1).\n  [Hint: 'CUBLAS_STATUS_NOT_INITIALIZED'. The cuBLAS library was "
    "not initialized.]\n",
    "cudnn-alloc": "ExternalError: CUDNN error(2), CUDNN_STATUS_ALLOC_FAILED.\n",
    "cudnn-init": "ExternalError: CUDNN error(1), CUDNN_STATUS_NOT_INITIALIZED.\n  [Hint: 'CUDNN_STATUS_NOT_INITIALIZED'"
    ". The cuDNN library was not initialized properly.]\n",
    "nccl": "ExternalError: Nccl error(1), unhandled cuda error (run with NCCL_DEBUG=INFO for details)\n"
    "  NCCL WARN Cuda failure 'out of memory'\n",
}


@pytest.mark.parametrize("form", sorted(OOM_TAILS))
def test_every_out_of_memory_form_halves_the_micro_batch(tmp_path, form):
    job = cls_job(bs=64)
    scheduler, launcher, lines = make(
        tmp_path, [job], FakeNVML([16]), outcomes={f"tnews/{job.name}": [(1, "step 3\n" + OOM_TAILS[form])]}
    )
    assert scheduler.run() == 0
    assert [p.argv[8] for p in launcher.started] == ["1", "2"]  # accumulation 1, then 2: micro-batch 64 -> 32
    assert "> out of memory: tnews 2e-05_64_0.1; again with accumulation 2" in lines


def test_nccl_cuda_error_alone_is_not_out_of_memory(tmp_path):
    job = cls_job(bs=64)
    tail = "ExternalError: Nccl error(1), unhandled cuda error (run with NCCL_DEBUG=INFO for details)\n"
    scheduler, launcher, lines = make(
        tmp_path, [job], FakeNVML([16]), retries=1, outcomes={f"tnews/{job.name}": [(1, tail)] * 2}
    )
    assert scheduler.run() == 1
    assert [p.argv[8] for p in launcher.started] == ["1", "1"]  # retried as it was, then given up
    assert grid.out_of_memory([tail]) is None


def test_out_of_memory_of_one_rank_is_found_in_its_log(tmp_path):
    """Under paddle.distributed.launch the error is in RUN_DIR/TASK/NAME.ranks/workerlog.N, not in the job's
    log; an error a previous attempt left there does not count."""
    c3 = grid.Job("c3", 1e-5, 24, 12, 0.1, 8, 512)
    ranks = tmp_path / "c3" / (c3.name + ".ranks")
    ranks.mkdir(parents=True)
    (ranks / "workerlog.1").write_text("old attempt\n" + OOM_TAILS["cuda"])
    scheduler, launcher, _ = make(
        tmp_path,
        [c3],
        FakeNVML([80] * 4),
        retries=0,
        outcomes={f"c3/{c3.name}": [(1, "launch: worker 1 exited\n")] * 2},
    )
    scheduler.run()
    assert len(launcher.started) == 1  # the old error was not taken for this attempt's
    # the next attempt of this job runs out of memory in rank 1 (the log is appended to, as launch does)
    scheduler, launcher, lines = make(
        tmp_path / "again",
        [c3],
        FakeNVML([80] * 4),
        retries=0,
        outcomes={f"c3/{c3.name}": [(1, "launch: worker 1 exited\n")]},
    )
    (tmp_path / "again" / "c3" / (c3.name + ".ranks")).mkdir(parents=True)
    log = tmp_path / "again" / "c3" / (c3.name + ".ranks") / "workerlog.1"
    log.write_text("old attempt, fine\n")
    real_start = launcher.start

    def start(argv, env):
        process = real_start(argv, env)
        with open(log, "a") as f:
            f.write(OOM_TAILS["cublas-init"])
        return process

    launcher.start = start
    assert scheduler.run() == 0
    assert [p.argv[6] for p in launcher.started] == ["12", "24"]


# ---------------------------------------------------------------- the command line
def test_max_jobs_per_gpu_must_be_a_count(capsys):
    script = load_script("grid_search_tools/grid_search.py")
    with pytest.raises(SystemExit) as exit_:
        script.parse_args(["m", "--max_jobs_per_gpu", "0"])
    assert exit_.value.code == 2 and "--max_jobs_per_gpu: must be an integer >= 1, not '0'" in capsys.readouterr().err
    assert script.parse_args(["ernie-3.0-medium-zh"]).max_jobs_per_gpu == 1
    with pytest.raises(SystemExit):
        script.parse_args(["m", "--device", "cpu", "--max_jobs_per_gpu", "2"])
    assert "--max_jobs_per_gpu is for --device gpu" in capsys.readouterr().err
