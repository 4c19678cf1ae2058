"""check_submission.py against submissions nobody can trust: bombs, links, FIFOs, devices, broken zips and
JSON, forged lines. Each ends in FAIL lines (exit 1) or one usage line (exit 2): no traceback, no hang."""

import io
import os
import struct
import zipfile

from cluebench.grid import submission_check

import pytest

AFQMC = "afqmc_predict.json"


def check(path, data_dir):
    out = io.StringIO()
    failures = submission_check.check(str(path), data_dir, out=out)
    return failures, out.getvalue().splitlines()


def fails(lines, name):
    return [line for line in lines if line.startswith(f"FAIL {name}")]


def test_a_zip_bomb_is_refused_from_its_header(tmp_path, synthetic_data):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open(AFQMC, "w", force_zip64=True) as member:
            block = b"\n" * (1 << 20)
            for _ in range(65):  # 65 MiB of newlines: a few kB compressed
                member.write(block)
    assert path.stat().st_size < 1 << 20
    failures, lines = check(path, synthetic_data)
    assert failures == 1 and fails(lines, AFQMC) == [
        f"FAIL {AFQMC}: inflates to {65 << 20:,} bytes, over the {64 << 20:,} of any prediction file"
    ]


def test_a_zip_whose_header_lies_about_the_size_is_read_only_that_far(tmp_path, synthetic_data):
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(AFQMC, b"\n" * 5000)
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")  # the central directory's size of the member: say 10 bytes
    data[central + 24 : central + 28] = struct.pack("<I", 10)
    local = data.index(b"PK\x03\x04")
    data[local + 22 : local + 26] = struct.pack("<I", 10)
    path.write_bytes(bytes(data))
    _, lines = check(path, synthetic_data)
    assert fails(lines, AFQMC) == [f"FAIL {AFQMC}: unreadable zip entry (BadZipFile: Bad CRC-32 for file '{AFQMC}')"]


def test_many_entries_and_a_huge_total_are_one_fail_line(tmp_path, synthetic_data, monkeypatch):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(submission_check.MAX_ENTRIES + 1):
            z.writestr(f"f{i}.json", b"{}")
    failures, lines = check(path, synthetic_data)
    assert failures == 1 and lines == [
        f"FAIL {path}: over 100 files; a submission has at most {len(submission_check.LEADERBOARD)}"
    ]
    monkeypatch.setattr(submission_check, "MAX_TOTAL_BYTES", 100)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(AFQMC, b" " * 60)
        z.writestr("tnews10_predict.json", b" " * 60)
    assert check(path, synthetic_data)[1] == [
        f"FAIL {path}: its files hold over 100 bytes, more than a whole submission"
    ]


@pytest.mark.parametrize("damage", ["directory", "name"])
def test_a_broken_zip_is_one_fail_line(tmp_path, synthetic_data, damage):
    path = tmp_path / "broken.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(AFQMC, b'{"id": 0, "label": "0"}\n')
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    if damage == "directory":
        del data[central + 4 : central + 30]  # the directory cut short; its end record unchanged
    else:  # a name flagged UTF-8 that is not
        data[central + 8 : central + 10] = struct.pack("<H", 0x800)
        data[central + 46] = 0xFF
    path.write_bytes(bytes(data))
    failures, lines = check(path, synthetic_data)
    assert failures == 1 and len(lines) == 1 and lines[0].startswith(f"FAIL {path}: not a readable zip (")


def test_an_encrypted_member_is_named(tmp_path, synthetic_data):
    path = tmp_path / "secret.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(AFQMC, b"x")
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # the encryption bit of both headers
        at = data.index(signature) + offset
        data[at] |= 1
    path.write_bytes(bytes(data))
    _, lines = check(path, synthetic_data)
    assert fails(lines, AFQMC) == [f"FAIL {AFQMC}: encrypted; the leaderboard cannot read it"]


def test_links_fifos_and_devices_in_a_folder_are_refused_unread(tmp_path, synthetic_data):
    folder = tmp_path / "sub"
    folder.mkdir()
    secret = tmp_path / "secret.json"
    secret.write_text('{"id": 0, "label": "0"}\n')
    os.symlink(secret, folder / AFQMC)
    os.mkfifo(folder / "tnews10_predict.json")
    os.symlink("/dev/zero", folder / "iflytek_predict.json")
    os.symlink(tmp_path, folder / "elsewhere")
    failures, lines = check(folder, synthetic_data)  # a FIFO read would block here for ever
    assert fails(lines, AFQMC) == [f"FAIL {AFQMC}: is a link; links are not followed"]
    assert fails(lines, "tnews10") == [
        "FAIL tnews10_predict.json: is not a regular file (a FIFO, a device or a socket)"
    ]
    assert fails(lines, "iflytek") == ["FAIL iflytek_predict.json: is a link; links are not followed"]
    assert fails(lines, "elsewhere") == ["FAIL elsewhere: is a link; links are not followed"]
    assert failures == 4


def test_a_fifo_or_device_as_the_argument_is_a_usage_error(tmp_path, synthetic_data):
    fifo = tmp_path / "sub.zip"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        with pytest.raises(submission_check.UsageError, match="neither a zip file nor a folder"):
            check(path, synthetic_data)
    assert submission_check.main([str(fifo), "--data_dir", synthetic_data]) == 2


def write_zip(path, files):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "text, why",
    [
        ("[" * 200_000 + "]" * 200_000 + "\n", "line 1: not usable JSON (nested too deeply)"),
        ('{"id": ' + "7" * 5000 + ', "label": "0"}\n', "line 1: not usable JSON (an integer of 5,000 digits)"),
    ],
    ids=["deep", "huge integer"],
)
def test_deep_or_huge_json_is_a_fail_line(tmp_path, synthetic_data, text, why):
    _, lines = check(write_zip(tmp_path / "s.zip", {AFQMC: text}), synthetic_data)
    assert fails(lines, AFQMC)[0] == f"FAIL {AFQMC}: {why}"  # then: every id missing


@pytest.mark.parametrize("text", ["[" * 200_000, '{"x": ' + "1" * 5000 + "}"], ids=["deep", "huge integer"])
def test_deep_or_huge_json_in_an_object_file_is_a_fail_line(tmp_path, synthetic_data, text):
    _, lines = check(write_zip(tmp_path / "s.zip", {"cmrc2018_predict.json": text}), synthetic_data)
    assert fails(lines, "cmrc2018")[0].startswith(
        ("FAIL cmrc2018_predict.json: not usable JSON", "FAIL cmrc2018_predict.json: line 1: not valid JSON")
    )


def test_a_name_cannot_forge_a_line(tmp_path, synthetic_data):
    name = "x\nOK  afqmc_predict.json  99 ids\x1b[2K"
    _, lines = check(write_zip(tmp_path / "s.zip", {name: b"{}"}), synthetic_data)
    assert not any(line.startswith("OK") for line in lines)
    assert [line for line in lines if line.startswith("FAIL x")] == [
        "FAIL x\\nOK  afqmc_predict.json  99 ids\\x1b[2K: not a CLUE leaderboard file name"
    ]
