"""Reading-comprehension features, decoding, cache and bad input, on hand-made inputs."""
import json
import os

import numpy as np
import pytest
from paddlenlp.transformers import AutoTokenizer

from cluebench import mrc
from cluebench.fast_tokenizer import TextEncoder
from cluebench.fileio import DataError


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
        assert [tuple(o) for o in offsets[5:5 + length]] == [(c, c + 1) for c in range(start, start + length)]
        # the answer (characters 13-14) is wholly inside the windows [8, 18) and [12, 22) only
        s, e = feats["start_positions"][f], feats["end_positions"][f]
        if start in (8, 12):
            assert (s, e) == (5 + 13 - start, 5 + 14 - start)
            assert context[offsets[s][0]:offsets[e][1]] == context[13:15]
        else:
            assert (s, e) == (0, 0)


def test_cmrc_question_too_long(encoder):
    example = mrc.QAExample("DEV_1_QUERY_0", chars(10), chars(14), ["x"], None)
    with pytest.raises(DataError, match="dev.json: field 'question': question DEV_1_QUERY_0: its 14 tokens leave no room"):
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
    example = mrc.ChoiceExample(1, chars(10), chars(4, 50), [chars(3, 90), chars(1, 95), mrc.C3_FILLER,
                                                             mrc.C3_FILLER], 0)
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
    right = first[first.index(marker) + 1:-1]
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
    cmrc = {"data": [{"paragraphs": [{"context": "甲乙丙丁", "qas": [
        {"id": "TRAIN_7_QUERY_1", "question": "?", "answers": [{"text": "乙丙", "answer_start": 2}]}]}]}]}
    path = write(tmp_path / "train.json", json.dumps(cmrc, ensure_ascii=False))
    with pytest.raises(DataError, match=r"train.json: field 'answers': question TRAIN_7_QUERY_1: answer '乙丙' "
                                        r"is not at answer_start 2 \(found '丙丁'\)"):
        mrc.read_cmrc(path, check_starts=True)
    assert mrc.read_cmrc(path, check_starts=False)[0].answers == ["乙丙"]  # dev: starts are not used

    with pytest.raises(DataError, match=r"cut.json: truncated JSON at line 1"):
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
    assert [n for n in os.listdir(tmp_path / "cache") if n.endswith(".tmp")] == []


def test_download_path_writes_the_official_layout(tmp_path):
    """Without --data_dir the MRC scripts fetch HuggingFace's clue set and write the official files;
    the conversion is checked here with rows shaped like HuggingFace's."""
    hf = {
        ("cmrc2018", "train"): [{"id": "T_0", "context": "甲乙丙丁", "question": "问？",
                                 "answers": {"text": ["乙丙"], "answer_start": [1]}}],
        ("cmrc2018", "validation"): [{"id": "D_0", "context": "甲乙丙丁", "question": "问？",
                                      "answers": {"text": ["丙", "丙丁"], "answer_start": [2, 2]}}],
        ("cmrc2018", "test"): [{"id": "TEST_9", "context": "甲乙", "question": "问？",
                                "answers": {"text": [], "answer_start": []}}],
        ("chid", "train"): [{"idx": 0, "candidates": ["一二三四"] * 10, "content": ["前#idiom000003#后#idiom000004#"],
                             "answers": {"text": ["一二三四"] * 2, "candidate_id": [4, 7]}}],
        ("chid", "validation"): [{"idx": 0, "candidates": ["一二三四"] * 10, "content": ["#idiom000009#"],
                                  "answers": {"text": ["一二三四"], "candidate_id": [2]}}],
        ("chid", "test"): [{"idx": 0, "candidates": ["一二三四"] * 10, "content": ["#idiom577157#x"],
                            "answers": {"text": [], "candidate_id": []}}],
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
