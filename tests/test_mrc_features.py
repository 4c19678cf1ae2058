"""Reading-comprehension features, decoding, cache and bad input, on hand-made inputs."""

import hashlib
import json
import os
import pickle

from cluebench import tasks
from cluebench.fileio import DataError
from cluebench.tasks import reading as mrc
from cluebench.train.fast_tokenizer import TextEncoder

import numpy as np
import pytest
from paddlenlp.transformers import AutoTokenizer, BertTokenizer


@pytest.fixture(scope="module")
def encoder(tiny_models):
    return TextEncoder(AutoTokenizer.from_pretrained(tiny_models["ernie"]))


def chars(n, start=0):
    return "".join(chr(0x4E00 + 200 + (start + i) % 200) for i in range(n))


def test_cmrc_windows_follow_paddlenlp_doc_stride(encoder):
    # question 3 tokens, max_seq_length 16 -> L = 16 - 3 - 3 = 10 context tokens a window; context 25 tokens;
    # doc_stride 4 is the step between window starts: 0, 4, 8, 12, 16 (16 + 9 reaches the end)
    context = chars(25)
    example = mrc.QAExample("q1", context, chars(3, 100), [context[13:15]], 13)
    feats = mrc.cmrc_features([example], encoder, 16, 4, with_labels=True)
    assert len(feats) == 5
    tok = encoder.tokenizer
    for f, start in enumerate([0, 4, 8, 12, 16]):
        ids = list(feats.rows("input_ids", f)[0])
        length = min(10, 25 - start)
        assert len(ids) == 3 + 3 + length and ids[0] == tok.cls_token_id and ids[4] == tok.sep_token_id
        assert list(feats.rows("token_type_ids", f)[0]) == [0] * 5 + [1] * (length + 1)
        offsets = feats.rows("offsets", f)[0].reshape(-1, 2)
        assert [tuple(o) for o in offsets[5 : 5 + length]] == [(c, c + 1) for c in range(start, start + length)]
        # the answer (characters 13-14) is wholly inside the windows [8, 18) and [12, 22) only
        s, e = feats["start_positions"][f], feats["end_positions"][f]
        if start in (8, 12):
            assert (s, e) == (5 + 13 - start, 5 + 14 - start)
            assert context[offsets[s][0] : offsets[e][1]] == context[13:15]
        else:
            assert (s, e) == (0, 0)


def test_cmrc_question_too_long(encoder):
    example = mrc.QAExample("DEV_1_QUERY_0", chars(10), chars(14), ["x"], None)
    with pytest.raises(
        DataError, match="dev.json: field 'question': question DEV_1_QUERY_0: its 14 tokens leave no room"
    ):
        mrc.cmrc_features([example], encoder, 16, 4, with_labels=False, path="dev.json")


def test_cmrc_answer_decoding(encoder):
    context = chars(12)
    example = mrc.QAExample("q", context, chars(2, 50), [], None)
    feats = mrc.cmrc_features([example], encoder, 32, 128, with_labels=False)
    n = len(feats.rows("input_ids", 0)[0])
    starts, ends = np.zeros(n), np.zeros(n)
    starts[0] = ends[0] = 10.0  # [CLS] is never an answer
    starts[4 + 3], ends[4 + 5] = 5.0, 5.0  # context tokens 3..5
    ends[4 + 2] = 6.0  # ends before the best start: invalid
    assert mrc.cmrc_answers([example], feats, [starts], [ends], 20, 50) == {"q": context[3:6]}
    assert mrc.cmrc_answers([example], feats, [starts], [ends], 20, 2) != {"q": context[3:6]}  # too long now


def test_c3_truncation_together(encoder):
    # budget max_seq_length - 4 = 12 tokens for (context, question, choice)
    example = mrc.ChoiceExample(
        1, chars(10), chars(4, 50), [chars(3, 90), chars(1, 95), mrc.C3_FILLER, mrc.C3_FILLER], 0
    )
    feats = mrc.c3_features([example], encoder, 16)
    # choice 0 (3): context 10 -> pop context until 10+4+3 <= 12: context 5; choice 1 (1): fits (5+4+1);
    # filler choices are [UNK]s of 4 tokens: 5+4+4 = 13 > 12 -> pop context -> 4 (then fits)
    rows = feats.rows("input_ids", 0)
    assert [len(r) for r in rows] == [4 + 4 + 4 + 3, 4 + 4 + 4 + 1, 4 + 4 + 4 + 4, 4 + 4 + 4 + 4]
    assert list(rows[0][1:5]) == list(rows[3][1:5])  # one truncated context for all four
    assert feats["labels"].tolist() == [0] and feats.group == 4


def test_truncate_longest_ties():
    a, b, c = [1, 2, 3], [4, 5, 6], [7, 8]
    mrc.truncate_longest([a, b, c], 6)
    assert (a, b, c) == ([1, 2], [4, 5], [7, 8])


def test_chid_features(encoder):
    text = chars(40) + "#idiom000001#" + chars(6, 60) + "#idiom000002#“" + chars(40, 100) + "”"
    row = mrc.ClozeRow([chars(4, 150 + 4 * k) for k in range(10)], [text], ["#idiom000001#", "#idiom000002#"], [3, 7])
    feats = mrc.chid_features([row], encoder, 32)
    tok = encoder.tokenizer
    marker, mask = tok.convert_tokens_to_ids(mrc.CHID_MARKER), tok.mask_token_id
    assert len(feats) == 2 and feats.group == 10 and feats["labels"].tolist() == [3, 7]
    assert feats["tag"].tolist() == ["#idiom000001#", "#idiom000002#"]
    for f in range(2):
        for k, ids in enumerate(feats.rows("input_ids", f)):
            ids = list(ids)
            assert len(ids) == 32 and ids.count(marker) == 1  # 4-character idioms fill max_seq_length exactly
            assert ids[1:5] == encoder.encode([row.candidates[k]])[0][0] and ids[5] == tok.sep_token_id
    first = list(feats.rows("input_ids", 0)[0])
    # the window of the first blank (N = 24: 12 left, 12 right) reaches the second blank: four [MASK]s
    right = first[first.index(marker) + 1 : -1]
    assert len(right) == 12 and right[6:10] == [mask] * 4


def test_chid_assignment_is_global_best_first():
    logits = np.array([[0.9, 0.8, 0.0], [0.95, 0.1, 0.0]])
    # (blank 1, cand 0) .95 first; blank 0 then cannot take cand 0 and gets cand 1 (.8)
    assert mrc.chid_assign(logits) == [1, 0]


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def test_bad_inputs(tmp_path):
    cmrc = {
        "data": [
            {
                "paragraphs": [
                    {
                        "context": "甲乙丙丁",
                        "qas": [
                            {"id": "TRAIN_7_QUERY_1", "question": "?", "answers": [{"text": "乙丙", "answer_start": 2}]}
                        ],
                    }
                ]
            }
        ]
    }
    path = write(tmp_path / "train.json", json.dumps(cmrc, ensure_ascii=False))
    with pytest.raises(
        DataError,
        match=r"train.json: field 'answers': question TRAIN_7_QUERY_1: answer '乙丙' "
        r"is not at answer_start 2 \(found '丙丁'\)",
    ):
        mrc.read_cmrc(path, check_starts=True)
    assert mrc.read_cmrc(path, check_starts=False, labelled=True)[0].answers == ["乙丙"]  # dev: starts unused
    assert mrc.read_cmrc(path, check_starts=False)[0].answers == []  # test: answers are not read

    with pytest.raises(DataError, match=r"cut.json:1: truncated JSON, column 174$"):  # just past the 173 kept
        mrc.read_json(write(tmp_path / "cut.json", json.dumps(cmrc)[:-7]))

    c3 = [[["男：你好"], [{"question": "?", "choice": ["a", "b"], "answer": "c"}], "1-1"]]
    with pytest.raises(DataError, match=r"c3.json: field 'answer': document 0, question 0: answer 'c' is not among"):
        mrc.read_c3([write(tmp_path / "c3.json", json.dumps(c3))], labelled=True)

    row = json.dumps({"candidates": ["甲乙丙丁"] * 10, "content": ["前#idiom000005#后#idiom000006#"]})
    rows = write(tmp_path / "chid.json", row + "\n")
    with pytest.raises(DataError, match=r"chid.json:1: field 'content': blank #idiom000006# has no answer"):
        mrc.read_chid([rows, write(tmp_path / "a.json", '{"#idiom000005#": 1}')], labelled=True)
    with pytest.raises(DataError, match=r"b.json: field '#idiom000006#': blank #idiom000006#: answer 10 is outside"):
        mrc.read_chid([rows, write(tmp_path / "b.json", '{"#idiom000005#": 1, "#idiom000006#": 10}')], labelled=True)


def test_feature_cache(tmp_path, encoder):
    examples = [mrc.QAExample("q", chars(30), chars(3), [], None)]
    builds = []

    def build():
        builds.append(1)
        return mrc.cmrc_features(examples, encoder, 16, 4, with_labels=False)

    data = write(tmp_path / "dev.json", "{}")
    key = mrc.cache_key("cmrc2018", "dev", [data], encoder.tokenizer, 16, 4)
    first = mrc.cached_features(key, build, str(tmp_path / "cache"))
    again = mrc.cached_features(dict(key), build, str(tmp_path / "cache"))
    assert len(builds) == 1 and len(again) == len(first) == 6
    assert all((again.columns[k] == first.columns[k]).all() for k in first.columns)
    # what decides features changes the key; nothing else can enter it
    assert mrc.cache_key("cmrc2018", "dev", [data], encoder.tokenizer, 16, 8) != key
    write(tmp_path / "dev.json", "{ }")
    assert mrc.cache_key("cmrc2018", "dev", [data], encoder.tokenizer, 16, 4) != key
    write(tmp_path / "dev.json", "{}")
    # a cache cut short (a run killed while writing) is detected and rebuilt
    path = mrc.cache_path(str(tmp_path / "cache"), key)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    rebuilt = mrc.cached_features(key, build, str(tmp_path / "cache"))
    assert len(builds) == 2 and len(rebuilt) == 6
    mrc.cached_features(key, build, str(tmp_path / "cache"), overwrite=True)
    assert len(builds) == 3
    # garbage, or a pickle (which a shared cache must not get to run), is rebuilt too
    for junk in (b"garbage", pickle.dumps({"__key__": "x"})):
        with open(path, "wb") as f:
            f.write(junk)
        assert len(mrc.cached_features(key, build, str(tmp_path / "cache"))) == 6
    assert len(builds) == 5
    assert [n for n in os.listdir(tmp_path / "cache") if n.endswith(".tmp")] == []


def test_download_path_writes_the_official_layout(tmp_path):
    """Without --data_dir the MRC scripts fetch HuggingFace's clue set and write the official files;
    the conversion is checked here with rows shaped like HuggingFace's."""
    hf = {
        ("cmrc2018", "train"): [
            {"id": "T_0", "context": "甲乙丙丁", "question": "问？", "answers": {"text": ["乙丙"], "answer_start": [1]}}
        ],
        ("cmrc2018", "validation"): [
            {
                "id": "D_0",
                "context": "甲乙丙丁",
                "question": "问？",
                "answers": {"text": ["丙", "丙丁"], "answer_start": [2, 2]},
            }
        ],
        ("cmrc2018", "test"): [
            {"id": "TEST_9", "context": "甲乙", "question": "问？", "answers": {"text": [], "answer_start": []}}
        ],
        ("chid", "train"): [
            {
                "idx": 0,
                "candidates": ["一二三四"] * 10,
                "content": ["前#idiom000003#后#idiom000004#"],
                "answers": {"text": ["一二三四"] * 2, "candidate_id": [4, 7]},
            }
        ],
        ("chid", "validation"): [
            {
                "idx": 0,
                "candidates": ["一二三四"] * 10,
                "content": ["#idiom000009#"],
                "answers": {"text": ["一二三四"], "candidate_id": [2]},
            }
        ],
        ("chid", "test"): [
            {
                "idx": 0,
                "candidates": ["一二三四"] * 10,
                "content": ["#idiom577157#x"],
                "answers": {"text": [], "candidate_id": []},
            }
        ],
    }
    root = str(tmp_path)
    for task in ("cmrc2018", "chid"):
        assert mrc.download(task, root, load=lambda name, t, split: hf[(t, split)]) == root
    train = mrc.load_examples("cmrc2018", "train", root)
    assert [(e.id, e.answers, e.answer_start) for e in train] == [("T_0", ["乙丙"], 1)]
    assert mrc.load_examples("cmrc2018", "dev", root)[0].answers == ["丙", "丙丁"]
    assert [e.id for e in mrc.load_examples("cmrc2018", "test", root)] == ["TEST_9"]
    rows = mrc.load_examples("chid", "train", root)
    assert rows[0].tags == ["#idiom000003#", "#idiom000004#"] and rows[0].labels == [4, 7]
    assert mrc.load_examples("chid", "test1.1", root)[0].tags == ["#idiom577157#"]
    # a second call finds the files and loads nothing
    assert mrc.download("chid", root, load=lambda *a, **k: pytest.fail("downloaded again")) == root

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    with pytest.raises(DataError, match=r"HuggingFace clue/c3: download failed \(ConnectionError\); pass --data_dir"):
        mrc.download("c3", root, load=offline)


def test_cache_key_follows_tokenizer_settings_and_feature_version(tmp_path, encoder, monkeypatch):
    data = write(tmp_path / "dev.json", "{}")
    key = mrc.cache_key("c3", "dev", [data], encoder.tokenizer, 16)
    basic = encoder.tokenizer.basic_tokenizer
    for name in ("do_lower_case", "strip_accents", "tokenize_chinese_chars"):
        value = getattr(basic, name)
        monkeypatch.setattr(basic, name, not value)
        assert mrc.cache_key("c3", "dev", [data], encoder.tokenizer, 16) != key, name
        monkeypatch.setattr(basic, name, value)
    monkeypatch.setattr(encoder.tokenizer, "mask_token", "[unused1]")  # another special token id
    assert mrc.cache_key("c3", "dev", [data], encoder.tokenizer, 16) != key
    monkeypatch.undo()
    monkeypatch.setattr(tasks.module("c3"), "FEATURE_VERSION", tasks.module("c3").FEATURE_VERSION + 1)
    assert mrc.cache_key("c3", "dev", [data], encoder.tokenizer, 16) != key
    monkeypatch.undo()
    assert mrc.cache_key("c3", "dev", [data], encoder.tokenizer, 16) == key


def test_chid_long_idioms_shorten_the_context(encoder):
    text = chars(60) + "#idiom000001#" + chars(60, 60)
    candidates = [chars(4, 150 + 4 * k) for k in range(10)]
    candidates[3] = chars(6, 190)  # 6 tokens: the context of this row shrinks by 2 for every candidate
    feats = mrc.chid_features([mrc.ClozeRow(candidates, [text], ["#idiom000001#"], [3])], encoder, 32)
    lengths = [len(ids) for ids in feats.rows("input_ids", 0)]
    assert lengths == [30, 30, 30, 32, 30, 30, 30, 30, 30, 30]  # never past max_seq_length
    candidates[3] = chars(28, 100)  # 28 tokens: [CLS] idiom [SEP] [unused1] [SEP] leaves no context token
    with pytest.raises(
        DataError,
        match=r"^train.json:7: field 'candidates': candidate '.{28}': its 28 tokens leave "
        r"no room for the context at max_seq_length 32$",
    ):
        mrc.chid_features([mrc.ClozeRow(candidates, [text], ["#idiom000001#"], [3], 7)], encoder, 32, "train.json")


# ---------------------------------------------------------------- golden features
# A digest of each task's features from the fixed input below, pinned with its task module's FEATURE_VERSION:
# when reader or feature code changes what is built, old caches must be ignored, so the version is bumped
# together with the digest.
GOLDEN = {
    "cmrc2018": (1, "e355689bbc6c64f05e353f300545125b5326772ab410ea45f31f18f5f8af8a95"),
    "c3": (1, "2089ad184c23f1872a10e4a5a5fb1b08ebeea01564db1f9aed11bbcfc4518113"),
    "chid": (1, "67105abbb36c6a94815e73eedae40ad451ca18298eb04adeb9063bfa589a75df"),
}
GOLDEN_VOCAB = (
    ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", "[unused1]"]
    + [chr(0x4E00 + i) for i in range(400)]
    + list('abcdefg，。？"-.')
    + ["##" + c for c in "abcdefg"]
)


def golden_data(root):
    """Small fixed files of the three tasks; they touch every branch of the feature code."""

    def dump(name, obj, lines=False):
        text = (
            "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in obj)
            if lines
            else json.dumps(obj, ensure_ascii=False)
        )
        write(os.path.join(root, name), text)

    paragraphs = []
    for p in range(3):
        context = chars(50 + 10 * p, 7 * p) + "，abc。" + chars(20, 90)
        qas = [
            {
                "id": f"T_{p}_{q}",
                "question": f" {chars(3 + q, 120 + p)}？ ",
                "answers": [{"text": context[11 * q + p : 11 * q + p + 4], "answer_start": 11 * q + p}],
            }
            for q in range(3)
        ]
        qas.append({"id": f"T_{p}_9", "question": chars(2, 150), "answers": [{"text": "不在", "answer_start": -1}]})
        paragraphs.append({"context": context, "qas": qas})
    dump("cmrc2018_public/train.json", {"data": [{"paragraphs": paragraphs}]})

    for prefix in ("d", "m"):
        dump(
            f"c3_public/{prefix}-train.json",
            [
                [
                    [chars(3 + d, d), "ABC" + chars(30 if d % 2 else 1, 50 + d)],
                    [
                        {
                            "question": chars(5, 200 + d) + "?",
                            "choice": [chars(2 + k, 250 + k) for k in range(2 + d % 3)],
                            "answer": chars(3, 251),
                        }
                    ],
                    f"{prefix}{d}",
                ]
                for d in range(4)
            ],
        )

    rows, answers, tag = [], {}, 0
    for r in range(3):
        candidates = [chars(4, 300 + 4 * k + r) for k in range(10)]
        if r == 2:
            candidates[5] = chars(6, 380)  # a longer idiom shortens the context
        passages = []
        for p in range(2):
            text = chars(10 + 5 * r, 20 * p)
            for _ in range(2):
                text += f"#idiom{tag:06d}#“{chars(2, 40 + tag)}”…—"  # the next blank is in the window: [MASK]s
                answers[f"#idiom{tag:06d}#"] = (3 * tag + r) % 10
                tag += 1
            passages.append(text + "——" + chars(3, 60) + "…")
        rows.append({"candidates": candidates, "content": passages})
    dump("chid_public/train.json", rows, lines=True)
    dump("chid_public/train_answer.json", answers)


def golden_features(task, root, encoder):
    examples = mrc.load_examples(task, "train", root)
    if task == "cmrc2018":
        return mrc.cmrc_features(examples, encoder, 24, 8, with_labels=True)
    if task == "c3":
        return mrc.c3_features(examples, encoder, 20)
    return mrc.chid_features(examples, encoder, 32)


def features_digest(feats):
    h = hashlib.sha256()
    for name in sorted(feats.columns):
        array = np.ascontiguousarray(feats.columns[name])
        h.update(f"{name} {array.dtype.str} {array.shape}".encode() + array.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("task", ["cmrc2018", "c3", "chid"])
def test_golden_features(task, tmp_path):
    vocab = write(tmp_path / "vocab.txt", "\n".join(GOLDEN_VOCAB) + "\n")
    encoder = TextEncoder(BertTokenizer(vocab))
    assert encoder.is_fast
    golden_data(str(tmp_path))
    digest = features_digest(golden_features(task, str(tmp_path), encoder))
    version, pinned = GOLDEN[task]
    module = tasks.module(task)
    assert module.FEATURE_VERSION == version, (
        f"{module.__name__}.FEATURE_VERSION is {module.FEATURE_VERSION}: pin GOLDEN[{task!r}] = "
        f"({module.FEATURE_VERSION}, {digest!r}) in this test"
    )
    assert digest == pinned, (
        f"the {task} features changed: bump {module.__name__}.FEATURE_VERSION to {version + 1} (so that old caches "
        f"are ignored) and pin GOLDEN[{task!r}] = ({version + 1}, {digest!r}) in this test"
    )
