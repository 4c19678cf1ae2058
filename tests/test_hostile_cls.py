"""Hostile input to the classification scripts: every case ends before the first training step with one
line naming the file, line and field (or the flag), and nothing is written. Add a case for every defect found."""

import json
import os
import shutil
import socket
import subprocess
import sys

from cluebench import fileio, results
from cluebench.fileio import DataError, OutputDirLock
from helpers import ROOT, load_script, run_python

import pytest

CLASSIFIER = load_script("classification/run_clue_classifier.py")
TRAINER = load_script("classification/run_clue_classifier_trainer.py")


@pytest.fixture
def data(synthetic_data, tmp_path):
    """A private copy of the synthetic CSL and TNEWS folders, to damage."""
    for task in ("csl", "tnews"):
        shutil.copytree(os.path.join(synthetic_data, f"{task}_public"), tmp_path / "data" / f"{task}_public")
    return tmp_path / "data"


def lines_of(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def rewrite(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


def run(model, data, out, *extra, task="csl"):
    CLASSIFIER.main(
        [
            "--task_name",
            task,
            "--model_name_or_path",
            model,
            "--data_dir",
            str(data),
            "--device",
            "cpu",
            "--output_dir",
            str(out),
            "--max_seq_length",
            "64",
            "--do_train",
            "--do_predict",
            "--max_steps",
            "2",
            *extra,
        ]
    )


def damage_line(path, number, change):
    lines = lines_of(path)
    record = json.loads(lines[number - 1])
    change(record)
    lines[number - 1] = json.dumps(record, ensure_ascii=False)
    rewrite(path, lines)


def first_id(path):
    return json.loads(lines_of(path)[0])["id"]


CASES = {
    # name: (file, damage, expected message after the path)
    "test id missing": ("test.json", lambda p: damage_line(p, 3, lambda r: r.pop("id")), ":3: field 'id': missing"),
    "test id duplicated": (
        "test.json",
        lambda p: damage_line(p, 5, lambda r: r.update(id=first_id(p))),
        ":5: field 'id': duplicate id {id} (first on line 1)",
    ),
    "test id not a scalar": (
        "test.json",
        lambda p: damage_line(p, 2, lambda r: r.update(id=[1])),
        ":2: field 'id': expected an integer or a string, got [1]",
    ),
    "test text missing": (
        "test.json",
        lambda p: damage_line(p, 7, lambda r: r.pop("abst")),
        ":7: field 'abst': missing",
    ),
    "test keywords not a list": (
        "test.json",
        lambda p: damage_line(p, 4, lambda r: r.update(keyword="x")),
        ":4: field 'keyword': expected a list of strings",
    ),
    "empty test file": ("test.json", lambda p: rewrite(p, []), ": no examples"),
    "blank test file": ("test.json", lambda p: rewrite(p, ["", "  "]), ": no examples"),
    "empty train file": ("train.json", lambda p: rewrite(p, []), ": no examples"),
    "dev line not JSON": (
        "dev.json",
        lambda p: rewrite(p, lines_of(p)[:2] + ['{"abst": "x",'] + lines_of(p)[3:]),
        ":3: not valid JSON (Expecting property name enclosed in double quotes, column 14)",
    ),
    "dev line not an object": (
        "dev.json",
        lambda p: rewrite(p, ["[1, 2]"] + lines_of(p)[1:]),
        ":1: expected a JSON object, got list",
    ),
    "dev label unknown": (
        "dev.json",
        lambda p: damage_line(p, 6, lambda r: r.update(label="2")),
        ":6: field 'label': label '2' is not one of the 2 csl labels (0, 1)",
    ),
    "missing test file": ("test.json", os.unlink, ": file not found"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_file_is_named_before_training(case, data, tiny_models, tmp_path, log_lines):
    name, damage, message = CASES[case]
    path = data / "csl_public" / name
    expected_id = first_id(path) if name == "test.json" and "duplicated" in case else None
    damage(str(path))
    out = tmp_path / "out"
    with pytest.raises(DataError) as error:
        run(tiny_models["ernie"], data, out)
    assert str(error.value) == f"{path}{message.format(id=expected_id)}"
    assert not out.exists()  # nothing written
    assert not [line for line in log_lines() if "global step" in line]  # no training step


def test_invalid_utf8_names_the_line(data, tiny_models, tmp_path):
    path = data / "csl_public" / "dev.json"
    raw = open(path, "rb").read().split(b"\n")
    raw[8] = raw[8].replace(b'"abst": "', b'"abst": "\xff\xfe', 1)
    open(path, "wb").write(b"\n".join(raw))
    with pytest.raises(DataError, match=r"dev\.json:9: not valid UTF-8 \(byte 0xff at byte \d+ of the line\)$"):
        run(tiny_models["ernie"], data, tmp_path / "out")
    assert not (tmp_path / "out").exists()


FLAGS = {
    ("--batch_size", "0"): "--batch_size 0: must be at least 1",
    ("--gradient_accumulation_steps", "0"): "--gradient_accumulation_steps 0: must be at least 1",
    (
        "--batch_size",
        "32",
        "--gradient_accumulation_steps",
        "3",
    ): "--batch_size 32: must be divisible by --gradient_accumulation_steps 3 (it is the effective batch)",
    ("--learning_rate", "0"): "--learning_rate 0.0: must be positive",
    ("--learning_rate=-1e-5",): "--learning_rate -1e-05: must be positive",
    ("--logging_steps", "0"): "--logging_steps 0: must be at least 1",
    ("--save_steps", "0"): "--save_steps 0: must be at least 1",
    ("--max_seq_length", "0"): "--max_seq_length 0: must be at least 1",
    ("--max_seq_length", "4"): "--max_seq_length 4: is too short for this task (at least 5)",
    (
        "--max_seq_length",
        "1024",
    ): "--max_seq_length 1024: exceeds the 512 positions of {model} (max_position_embeddings)",
    ("--warmup_proportion", "1.5"): "--warmup_proportion 1.5: must be between 0 and 1",
    ("--dropout", "1"): "--dropout 1.0: must be in [0, 1)",
    ("--weight_decay", "-0.1"): "--weight_decay -0.1: must not be negative",
    (
        "--max_steps",
        "-1",
        "--num_train_epochs",
        "0",
    ): "--num_train_epochs 0: must be at least 1 to train (or give --max_steps)",
    ("--max_steps", "0", "--num_train_epochs", "0"):  # trained nothing, then a traceback, before
    "--num_train_epochs 0: must be at least 1 to train (or give --max_steps)",
}


@pytest.mark.parametrize("flags", FLAGS, ids=" ".join)
def test_bad_flag_is_named_before_anything(flags, synthetic_data, tiny_models, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DataError) as error:
        run(tiny_models["ernie"], synthetic_data, out, *flags)
    assert str(error.value) == FLAGS[flags].format(model=tiny_models["ernie"])
    assert not out.exists()


def test_vocabulary_larger_than_the_embedding_table(tiny_models, synthetic_data, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_models["ernie"], model)
    with open(model / "vocab.txt", "a", encoding="utf-8") as f:
        f.write("extra1\nextra2\n")
    size = json.load(open(model / "config.json"))["vocab_size"]
    with pytest.raises(DataError) as error:
        run(str(model), synthetic_data, tmp_path / "out")
    assert str(error.value) == (
        f"{model}: the vocabulary has ids up to {size + 1}, but the model's embedding table "
        f"has {size} rows (vocab_size in its config)"
    )


def test_truncated_weights_are_named(tiny_models, synthetic_data, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_models["ernie"], model)
    weights = model / "model_state.pdparams"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(DataError, match=rf"^{model}: cannot load the model \(\w+"):
        run(str(model), synthetic_data, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_dir_that_is_a_file(tiny_models, synthetic_data, tmp_path):
    out = tmp_path / "out"
    out.write_text("not a folder")
    with pytest.raises(DataError, match=rf"^{out}: output directory is a file, not a directory$"):
        run(tiny_models["ernie"], synthetic_data, out)
    assert out.read_text() == "not a folder"


def test_second_run_on_one_output_dir_is_refused(tiny_models, synthetic_data, tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out.mkdir()
        (out / OutputDirLock.NAME).write_text(
            json.dumps({"host": socket.gethostname(), "pid": holder.pid, "started": "earlier"})
        )
        with pytest.raises(DataError) as error:
            run(tiny_models["ernie"], synthetic_data, out)
        assert str(error.value) == (
            f"{out}: output directory is in use by pid {holder.pid} on "
            f"{socket.gethostname()} since earlier (lock {out / OutputDirLock.NAME}); "
            "use another --output_dir"
        )
        assert sorted(os.listdir(out)) == [OutputDirLock.NAME]
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_and_leftovers_are_taken_over(tiny_models, synthetic_data, tmp_path, log_lines):
    """A killed run's lock, temporary files and save folder: the next run says so, removes them and runs."""
    out = tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    out.mkdir()
    (out / OutputDirLock.NAME).write_text(json.dumps({"host": host, "pid": dead.pid, "started": "then"}))
    tag = fileio.HOST_TAG
    leftovers = [f".csl_predict.json.{tag}-{dead.pid}.abc123.tmp", f".saving-{tag}-{dead.pid}.xyz"]
    (out / leftovers[0]).write_text("half")
    (out / leftovers[1]).mkdir()
    (out / leftovers[1] / "model_state.pdparams").write_bytes(b"half")
    live = f".clue_results.json.{tag}-{os.getpid()}.keep.tmp"  # a live process's: left alone
    (out / live).write_text("being written")
    run(tiny_models["ernie"], synthetic_data, out)
    lines = "\n".join(log_lines())
    assert f"{out}: taking over the stale lock of pid {dead.pid} (dead)" in lines
    assert f"{out}: removed 2 leftovers of killed runs" in lines
    assert sorted(n for n in os.listdir(out) if n.startswith(".")) == [live]  # lock released at the end
    assert results.read_record(str(out / results.FILENAME))["throughput"]["optimizer_steps"] == 2


def test_a_gone_hosts_lock_is_broken_by_name_only(tiny_models, synthetic_data, tmp_path, log_lines):
    """Another host's lock cannot be judged from here: refused, saying how; --break_lock with that host's
    name takes it over and runs; --break_lock naming another host leaves it alone."""
    out = tmp_path / "out"
    out.mkdir()
    (out / OutputDirLock.NAME).write_text(json.dumps({"host": "node17", "pid": 4242, "started": "yesterday"}))
    said = (
        f"{out}: output directory is in use by pid 4242 on node17 since yesterday (lock "
        f"{out / OutputDirLock.NAME}); use another --output_dir; if that host is gone, rerun with "
        "--break_lock node17"
    )
    for extra in ([], ["--break_lock", "node18"]):
        with pytest.raises(DataError) as error:
            run(tiny_models["ernie"], synthetic_data, out, *extra)
        assert str(error.value) == said
        assert sorted(os.listdir(out)) == [OutputDirLock.NAME]
    run(tiny_models["ernie"], synthetic_data, out, "--break_lock", "node17")
    assert f"{out}: taking over the lock of pid 4242 on node17 since yesterday (--break_lock)" in "\n".join(log_lines())
    assert not (out / OutputDirLock.NAME).exists()  # ours now, released at the end
    assert results.read_record(str(out / results.FILENAME))["throughput"]["optimizer_steps"] == 2


@pytest.mark.parametrize("host", ["", "two words", "bell\a"])
def test_break_lock_takes_a_host_name(tiny_models, synthetic_data, tmp_path, host, capsys):
    with pytest.raises(SystemExit) as code:
        run(tiny_models["ernie"], synthetic_data, tmp_path / "out", "--break_lock", host)
    assert code.value.code == 2
    assert (
        f"--break_lock: must be a host name (printable, no spaces, at most 255 bytes), not {host!r}"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a subprocess
def test_files_follow_the_umask(tiny_models, synthetic_data, tmp_path):
    """Records, predictions and weights are readable by the group when the umask says so (not 0600)."""
    out = tmp_path / "out"
    command = (
        f"umask 002 && {sys.executable} classification/run_clue_classifier.py --task_name csl "
        f"--model_name_or_path {tiny_models['ernie']} --data_dir {synthetic_data} --device cpu "
        f"--output_dir {out} --max_seq_length 64 --do_train --do_predict --max_steps 2"
    )
    proc = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    modes = {name: os.stat(out / name).st_mode & 0o777 for name in os.listdir(out)}
    assert modes["clue_results.json"] == modes["csl_predict.json"] == modes["model_state.pdparams"] == 0o664


@pytest.mark.slow  # a subprocess
def test_one_line_and_status_2_from_the_command_line(data, tiny_models, tmp_path):
    path = data / "csl_public" / "test.json"
    damage_line(str(path), 2, lambda r: r.pop("id"))
    out = tmp_path / "out"
    proc = run_python(
        [
            "classification/run_clue_classifier.py",
            "--task_name",
            "csl",
            "--model_name_or_path",
            tiny_models["ernie"],
            "--data_dir",
            str(data),
            "--device",
            "cpu",
            "--output_dir",
            str(out),
            "--do_train",
            "--do_predict",
        ]
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"error: {path}:2: field 'id': missing"
    assert "Traceback" not in proc.stderr + proc.stdout and "global step" not in proc.stderr + proc.stdout
    assert not out.exists()


TRAINER_CASES = {
    ("--per_device_train_batch_size", "0"): "--per_device_train_batch_size 0: must be at least 1",
    ("--learning_rate", "0"): "--learning_rate 0.0: must be positive",
    (
        "--max_seq_length",
        "2048",
    ): "--max_seq_length 2048: exceeds the 512 positions of {model} (max_position_embeddings)",
    ("--dataset", "clue nope"): "--dataset 'clue nope': unknown task 'nope'; valid tasks: afqmc, tnews, iflytek, "
    "ocnli, cmnli, cluewsc2020, csl, bustm",
    ("--dataset", "glue sst2"): "--dataset 'glue sst2': must be \"clue TASK\" with TASK one of afqmc, tnews, "
    "iflytek, ocnli, cmnli, cluewsc2020, csl, bustm",
}


@pytest.mark.parametrize("flags", TRAINER_CASES, ids=" ".join)
def test_trainer_bad_flags(flags, synthetic_data, tiny_models, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "run_clue_classifier_trainer.py",
            "--dataset",
            "clue csl",
            "--data_dir",
            synthetic_data,
            "--model_name_or_path",
            tiny_models["ernie"],
            "--output_dir",
            str(out),
            "--device",
            "cpu",
            "--do_train",
            "--do_predict",
            "--max_steps",
            "2",
            *flags,
        ],
    )
    with pytest.raises(DataError) as error:
        TRAINER.main()
    assert str(error.value) == TRAINER_CASES[flags].format(model=tiny_models["ernie"])
    assert not out.exists()


def test_trainer_bad_test_file_before_training(data, tiny_models, tmp_path, monkeypatch):
    path = data / "csl_public" / "test.json"
    damage_line(str(path), 4, lambda r: r.pop("id"))
    out = tmp_path / "out"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "run_clue_classifier_trainer.py",
            "--dataset",
            "clue csl",
            "--data_dir",
            str(data),
            "--model_name_or_path",
            tiny_models["ernie"],
            "--output_dir",
            str(out),
            "--device",
            "cpu",
            "--do_train",
            "--do_predict",
            "--max_steps",
            "2",
        ],
    )
    with pytest.raises(DataError) as error:
        TRAINER.main()
    assert str(error.value) == f"{path}:4: field 'id': missing"
    assert not out.exists()


MORE_FLAGS = {  # found by a hostile sweep
    ("--seed", "4294967296"): "--seed 4294967296: must be between 0 and 2**32 - 1",
    ("--seed=-1",): "--seed -1: must be between 0 and 2**32 - 1",
    ("--learning_rate", "inf"): "--learning_rate inf: must be a finite number",
    ("--weight_decay", "nan"): "--weight_decay nan: must be a finite number",
    ("--max_grad_norm", "inf"): "--max_grad_norm inf: must be a finite number",
    (
        "--checkpoint_minutes=-5",
    ): "--checkpoint_minutes -5.0: must not be negative (0: checkpoints at evaluations only)",
    ("--device", "foo"): "--device foo: is not a device this Paddle build can use; use cpu, gpu or gpu:N",
    ("--device", "xpu"): "--device xpu: is not a device this Paddle build can use; use cpu, gpu or gpu:N",
}


@pytest.mark.parametrize("flags", MORE_FLAGS, ids=" ".join)
def test_more_bad_flags(flags, synthetic_data, tiny_models, tmp_path):
    with pytest.raises(DataError) as error:
        run(tiny_models["ernie"], synthetic_data, tmp_path / "out", *flags)
    assert str(error.value) == MORE_FLAGS[flags]
    assert not (tmp_path / "out").exists()


def test_nothing_to_do_is_said(synthetic_data, tiny_models, tmp_path):
    with pytest.raises(DataError, match="^flags: nothing to do: give --do_train, --do_eval and/or --do_predict$"):
        CLASSIFIER.main(
            [
                "--task_name",
                "csl",
                "--model_name_or_path",
                tiny_models["ernie"],
                "--data_dir",
                synthetic_data,
                "--device",
                "cpu",
                "--output_dir",
                str(tmp_path / "out"),
            ]
        )


def test_output_dir_must_not_be_the_model(tiny_models, synthetic_data, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_models["ernie"], model)
    weights = (model / "model_state.pdparams").read_bytes()
    with pytest.raises(DataError) as error:
        run(str(model), synthetic_data, model)
    assert str(error.value) == (
        f"--output_dir {model}: is the model's own folder: saving would overwrite the "
        "pretrained weights; choose another --output_dir"
    )
    assert (model / "model_state.pdparams").read_bytes() == weights


def test_results_file_that_is_a_directory(tiny_models, synthetic_data, tmp_path):
    (tmp_path / "records").mkdir()
    with pytest.raises(DataError) as error:
        run(tiny_models["ernie"], synthetic_data, tmp_path / "out", "--results_file", str(tmp_path / "records"))
    assert str(error.value) == f"{tmp_path / 'records'}: is a directory; a file is to be written there"
    assert not (tmp_path / "out").exists()


def test_vocabulary_without_cls(tiny_models, synthetic_data, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_models["ernie"], model)
    words = (model / "vocab.txt").read_text(encoding="utf-8").split("\n")
    (model / "vocab.txt").write_text("\n".join(w if w != "[CLS]" else "[CLX]" for w in words), encoding="utf-8")
    with pytest.raises(DataError) as error:
        run(str(model), synthetic_data, tmp_path / "out")
    assert str(error.value) == f"{model}: the vocabulary has no [CLS] (cls_token)"


WSC_CASES = {
    "span text a number": (lambda t: t.update(span1_text=5), "target.span1_text: expected a non-empty string, got 5"),
    "span text empty": (lambda t: t.update(span2_text=""), 'target.span2_text: expected a non-empty string, got ""'),
    "span index a boolean": (
        lambda t: t.update(span1_index=True),
        "target.span1_index: expected a non-negative integer, got true",
    ),
    "span index negative": (
        lambda t: t.update(span2_index=-2),
        "target.span2_index: expected a non-negative integer, got -2",
    ),
}


@pytest.mark.parametrize("case", WSC_CASES)
def test_wsc_target_types(case, synthetic_data, tiny_models, tmp_path):
    shutil.copytree(os.path.join(synthetic_data, "cluewsc2020_public"), tmp_path / "data" / "cluewsc2020_public")
    path = tmp_path / "data" / "cluewsc2020_public" / "train.json"
    change, message = WSC_CASES[case]
    damage_line(str(path), 2, lambda r: change(r["target"]))
    with pytest.raises(DataError) as error:
        run(tiny_models["ernie"], tmp_path / "data", tmp_path / "out", task="cluewsc2020")
    assert str(error.value) == f"{path}:2: field 'target': {message}"


def test_ids_0_and_quoted_0_are_one_id(data, tiny_models, tmp_path):
    path = data / "tnews_public" / "test.json"
    damage_line(str(path), 3, lambda r: r.update(id=str(first_id(path))))
    with pytest.raises(DataError) as error:
        run(tiny_models["ernie"], data, tmp_path / "out", task="tnews")
    assert str(error.value) == f"{path}:3: field 'id': duplicate id '{first_id(path)}' (first on line 1)"


def test_offline_download_is_one_line(tiny_models, tmp_path, monkeypatch):
    """No --data_dir: PaddleNLP's archive is downloaded; when that fails (offline), one line."""
    import paddlenlp.datasets.clue as clue_module

    def offline(*args, **kwargs):
        raise RuntimeError("Download from https://bj.bcebos.com/... failed. Retry limit reached")

    monkeypatch.setattr(clue_module, "get_path_from_url", offline)
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path / "home"))  # no cached archive
    with pytest.raises(DataError) as error:
        CLASSIFIER.main(
            [
                "--task_name",
                "tnews",
                "--model_name_or_path",
                tiny_models["ernie"],
                "--device",
                "cpu",
                "--output_dir",
                str(tmp_path / "out"),
                "--do_train",
            ]
        )
    assert str(error.value) == (
        "PaddleNLP clue/tnews: download failed (RuntimeError); pass --data_dir with the official tnews_public files"
    )


TRAINER_MORE = {
    ("--warmup_ratio", "2"): "arguments: warmup_ratio must lie in range [0,1]",
    ("--no_such_flag", "1"): "arguments: Some specified arguments are not used by the PdArgumentParser: "
    "['--no_such_flag', '1']",
    ("--num_train_epochs", "nan", "--max_steps", "-1"): "--num_train_epochs nan: must be a finite number",
    ("--weight_decay", "-1"): "--weight_decay -1.0: must not be negative",
    ("--adam_epsilon", "0"): "--adam_epsilon 0.0: must be positive",
    ("--metric_for_best_model", "eval_bogus"): "--metric_for_best_model eval_bogus: must be one of eval_accuracy, "
    "accuracy, eval_loss, loss",
}


@pytest.mark.parametrize("flags", TRAINER_MORE, ids=" ".join)
def test_trainer_more_bad_flags(flags, synthetic_data, tiny_models, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "run_clue_classifier_trainer.py",
            "--dataset",
            "clue csl",
            "--data_dir",
            synthetic_data,
            "--model_name_or_path",
            tiny_models["ernie"],
            "--output_dir",
            str(out),
            "--device",
            "cpu",
            "--do_train",
            "--max_steps",
            "2",
            *flags,
        ],
    )
    with pytest.raises(DataError) as error:
        TRAINER.main()
    assert str(error.value) == TRAINER_MORE[flags]
    assert not out.exists()


def test_trainer_refuses_a_checkpoint_of_another_task(synthetic_data, tiny_models, tmp_path, monkeypatch):
    out = tmp_path / "out"

    def trainer(task):
        monkeypatch.setattr(
            sys,
            "argv",
            [
                "run_clue_classifier_trainer.py",
                "--dataset",
                f"clue {task}",
                "--data_dir",
                synthetic_data,
                "--model_name_or_path",
                tiny_models["ernie"],
                "--output_dir",
                str(out),
                "--device",
                "cpu",
                "--do_train",
                "--max_steps",
                "2",
                "--save_steps",
                "2",
                "--max_seq_length",
                "64",
            ],
        )
        TRAINER.main()

    trainer("tnews")
    with pytest.raises(DataError) as error:
        trainer("iflytek")
    assert str(error.value).startswith(f"{out / 'checkpoint-2'}: checkpoint of a different run: its task differ")
    assert str(error.value).endswith("; pass --overwrite_output_dir to start over, or another --output_dir")


def test_lock_path_that_is_a_directory(tiny_models, synthetic_data, tmp_path):
    out = tmp_path / "out"
    (out / OutputDirLock.NAME).mkdir(parents=True)
    with pytest.raises(DataError) as error:
        run(tiny_models["ernie"], synthetic_data, out)
    assert str(error.value) == (
        f"{out / OutputDirLock.NAME}: is a directory, where the run's lock file goes; remove it"
    )


def test_resume_checkpoint_of_another_shape(tiny_models, synthetic_data, tmp_path):
    import pickle

    out = tmp_path / "out"
    out.mkdir()
    (out / "resume.pdckpt").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DataError) as error:
        run(tiny_models["ernie"], synthetic_data, out)
    assert str(error.value) == (
        f"{out / 'resume.pdckpt'}: resume checkpoint of an older format (a pickle, not "
        "loaded); remove it or pass --resume never"
    )


def test_trainer_missing_train_file_is_named(data, tiny_models, tmp_path, monkeypatch):
    """Named by the reader, not a traceback from hashing the files for the checkpoint fingerprint."""
    path = data / "csl_public" / "train.json"
    path.unlink()
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "run_clue_classifier_trainer.py",
            "--dataset",
            "clue csl",
            "--data_dir",
            str(data),
            "--model_name_or_path",
            tiny_models["ernie"],
            "--output_dir",
            str(tmp_path / "out"),
            "--device",
            "cpu",
            "--do_train",
            "--max_steps",
            "2",
        ],
    )
    with pytest.raises(DataError) as error:
        TRAINER.main()
    assert str(error.value) == f"{path}: file not found"
    assert not (tmp_path / "out").exists()
