"""Reading comprehension on the real CLUE files in $CLUE_DATA_DIR (skipped when it is unset)."""

import json

from cluebench.fileio import read_jsonl
from cluebench.tasks import reading as mrc
from cluebench.train.fast_tokenizer import TextEncoder
from helpers import load_script

import pytest
from paddlenlp.transformers import AutoTokenizer

pytestmark = pytest.mark.slow  # end to end: `pytest -m "not slow"` leaves this module out


@pytest.fixture(scope="module")
def tokenizer(real_vocab_model):
    return AutoTokenizer.from_pretrained(real_vocab_model)


def test_real_counts(clue_data):
    assert len(mrc.load_examples("cmrc2018", "dev", clue_data)) == 3219
    assert len(mrc.load_examples("cmrc2018", "test", clue_data)) == 2000
    assert len(mrc.load_examples("c3", "dev", clue_data)) == 1825 + 1991 == 3816
    test = mrc.load_examples("c3", "test1.1", clue_data)
    assert len(test) == 3892 and all(e.label is None and len(e.choices) == 4 for e in test)
    for split in ("train", "dev"):
        rows = mrc.load_examples("chid", split, clue_data)
        answers = mrc.read_json(mrc.split_files("chid", split, clue_data)[1])
        assert (
            len(rows) == 1 and rows[0].tags == sorted(answers) and rows[0].labels == [answers[t] for t in rows[0].tags]
        )
    assert len(mrc.load_examples("chid", "test1.1", clue_data)[0].candidates) == 10


def test_fast_tokenizer_is_exact_on_real_dev_sets(clue_data, tokenizer):
    """The Rust encoder gives PaddleNLP's ids and offsets on every question, context and choice."""
    texts = []
    for e in mrc.load_examples("cmrc2018", "dev", clue_data):
        texts.append(e.question)
    texts += sorted({e.context for e in mrc.load_examples("cmrc2018", "dev", clue_data)})
    for path in mrc.split_files("c3", "dev", clue_data):
        for doc in mrc.read_json(path):
            texts.append("\n".join(doc[0]))
            for q in doc[1]:
                texts += [q["question"]] + q["choice"]
    fast, slow = TextEncoder(tokenizer), TextEncoder(tokenizer, fast=False)
    assert fast.is_fast and len(texts) > 3219 + 848 + 3816
    got, expected = fast.encode(texts), slow.encode(texts)
    mismatches = [
        t for t, g, x in zip(texts, got, expected) if g[0] != x[0] or list(map(tuple, g[1])) != list(map(tuple, x[1]))
    ]
    assert mismatches == []


def test_every_dev_answer_maps_into_a_window_and_back(clue_data, tokenizer):
    path = mrc.split_files("cmrc2018", "dev", clue_data)[0]
    examples, skipped = [], 0
    for e in mrc.read_cmrc(path, check_starts=False, labelled=True):
        for k, text in enumerate(e.answers):
            start = next(a["answer_start"] for a in _raw_answers(clue_data)[e.id][k : k + 1])
            if start == -1 or e.context[start : start + len(text)] != text:
                skipped += 1  # real dev: 193 golds without a position, 7 pointing elsewhere
                continue
            examples.append(mrc.QAExample(f"{e.id}/{k}", e.context, e.question, [text], start))
    assert skipped == 200 and len(examples) == 3 * 3219 - 200
    encoder = TextEncoder(tokenizer)
    feats = mrc.cmrc_features(examples, encoder, 512, 128, with_labels=True, path=path)
    # Answers whose first or last character falls inside a WordPiece token ("4个" in "34个") cannot be
    # cut out exactly by any token span; for them the label is the smallest span that covers the answer.
    context_offsets = {e.context: encoder.encode([e.context])[0][1] for e in examples}
    inside_token = set()
    for e in examples:
        starts = {o[0] for o in context_offsets[e.context]}
        ends = {o[1] for o in context_offsets[e.context]}
        text = e.answers[0].strip()
        begin = e.answer_start + e.answers[0].index(text)
        if begin not in starts or begin + len(text) not in ends:
            inside_token.add(e.id)
    exact, covering = set(), set()
    for f in range(len(feats)):
        s, e = int(feats["start_positions"][f]), int(feats["end_positions"][f])
        if s == 0:
            continue
        example = examples[feats["example_index"][f]]
        offsets = feats.rows("offsets", f)[0].reshape(-1, 2)
        span, text = example.context[offsets[s][0] : offsets[e][1]], example.answers[0].strip()
        if example.id in inside_token:
            assert text in span and len(span) < len(text) + 20, (example.id, span, text)
            covering.add(example.id)
        else:
            assert span == text, example.id
            exact.add(example.id)
    assert len(exact) + len(covering) == len(examples)  # every answer lands in at least one window
    assert len(covering) == len(inside_token) == 3  # DEV_379_QUERY_2 (twice) and DEV_1933_QUERY_4


_answers_cache = {}


def _raw_answers(clue_data):
    if not _answers_cache:
        data = mrc.read_json(mrc.split_files("cmrc2018", "dev", clue_data)[0])
        for article in data["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    _answers_cache[qa["id"]] = qa["answers"]
    return _answers_cache


def test_chid_marker_is_one_token_of_the_real_vocabulary(clue_data, tokenizer):
    marker = tokenizer.convert_tokens_to_ids(mrc.CHID_MARKER)
    assert marker != tokenizer.unk_token_id and tokenizer.convert_ids_to_tokens(marker) == mrc.CHID_MARKER
    rows = mrc.load_examples("chid", "dev", clue_data)
    feats = mrc.chid_features(rows, TextEncoder(tokenizer), 64)
    assert len(feats) == len(rows[0].tags)
    for f in range(len(feats)):
        for ids in feats.rows("input_ids", f):
            assert list(ids).count(marker) == 1 and len(ids) == 64


@pytest.mark.parametrize(
    "task, name", [("cmrc2018", "cmrc2018_predict.json"), ("c3", "c311_predict.json"), ("chid", "chid11_predict.json")]
)
def test_real_prediction_files_carry_test_ids(task, name, clue_data, real_vocab_model, tmp_path):
    load_script(f"mrc/run_{task}.py").main(
        [
            "--model_name_or_path",
            real_vocab_model,
            "--data_dir",
            clue_data,
            "--device",
            "cpu",
            "--do_predict",
            "--output_dir",
            str(tmp_path),
            "--cache_dir",
            str(tmp_path / "cache"),
            "--max_seq_length",
            "64" if task == "chid" else "128",
            "--eval_batch_size",
            "64",
        ]
    )
    path = tmp_path / name
    if task == "cmrc2018":
        expected = [e.id for e in mrc.load_examples(task, "test", clue_data)]
        with open(path, encoding="utf-8") as f:
            assert list(json.load(f)) == expected and len(expected) == 2000
    elif task == "c3":
        expected = [q["id"] for doc in mrc.read_json(mrc.split_files(task, "test1.1", clue_data)[0]) for q in doc[1]]
        written = [r for _, r in read_jsonl(str(path))]
        assert [r["id"] for r in written] == expected and len(expected) == 3892
        assert {r["label"] for r in written} <= {0, 1, 2, 3}
    else:
        rows = mrc.load_examples(task, "test1.1", clue_data)
        with open(path, encoding="utf-8") as f:
            written = json.load(f)
        assert list(written) == rows[0].tags and set(written.values()) <= set(range(10))
        assert len(set(written.values())) == len(written)  # best-first assignment uses each idiom once
