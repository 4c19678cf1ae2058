"""CMRC2018 EM/F1 on hand-computed cases, both variants (scores in percent)."""

from cluebench.train.cmrc_metric import cmrc_scores, official_em, official_f1, segments

import pytest


def scores(gold, prediction, variant):
    return cmrc_scores({"q": gold if isinstance(gold, list) else [gold]}, {"q": prediction}, variant)


@pytest.mark.parametrize(
    "gold, prediction, em, f1",
    [
        ("光荣和ω-force", "光荣和ω-force", 100, 100),
        # bag of characters: 北京 against 北京大学 -> P 2/2, R 2/4
        ("北京大学", "北京", 0, 100 * 2 / 3),
        # order does not matter to a bag of characters
        ("甲乙丙丁", "丁丙乙甲", 0, 100),
        # punctuation removed before comparing
        ("《战国无双3》", "战国无双3", 100, 100),
        # English: articles removed; F1 only looks at the first whitespace-delimited chunk
        ("the apple", "apple", 100, 100),
        ("hello world", "hello", 0, 100),
        # best of several golds
        (["北京大学", "北京"], "北京", 100, 100),
    ],
)
def test_upstream_variant(gold, prediction, em, f1):
    result = scores(gold, prediction, "upstream")
    assert result["em"] == pytest.approx(em) and result["f1"] == pytest.approx(f1)


def test_official_segmentation():
    assert segments("1998年，New York City的“光荣”") == ["1998", "年", "new", "york", "city", "的", "光", "荣"]
    assert segments("ω-force开发") == ["ωforce", "开", "发"]  # '-' is removed without splitting the word
    assert segments("") == []


@pytest.mark.parametrize(
    "gold, prediction, em, f1",
    [
        ("北京大学", "北京", 0, 2 / 3),
        # longest common run, not a bag: only one segment in a row agrees -> P = R = 1/4
        ("甲乙丙丁", "丁丙乙甲", 0, 0.25),
        # words and digits are single segments: LCS 2 of 3 -> P 1, R 2/3
        ("New York City", "York City", 0, 0.8),
        ("1998年", "1998", 0, 2 / 3),
        ("“光荣”", "光荣", 1, 1),
        ("ω-force开发", "ω-force", 0, 0.5),
        # empty answers: equal strings match exactly, but there is nothing in common for F1
        ("", "", 1, 0),
        ("光荣", "", 0, 0),
    ],
)
def test_official_single(gold, prediction, em, f1):
    assert official_em(gold, prediction) == em
    assert official_f1(gold, prediction) == pytest.approx(f1)


def test_official_averages_over_all_questions():
    references = {"a": ["北京大学", "北京"], "b": ["New York City"], "c": ["光荣"], "d": ["一二"]}
    predictions = {"a": "北京", "b": "York City", "c": "荣光"}  # d unanswered: counts as 0
    result = cmrc_scores(references, predictions, "official")
    # a: EM 1, F1 1; b: EM 0, F1 0.8; c: EM 0, F1 (LCS 1: P = R = 1/2) 0.5; d: 0, 0
    assert result["em"] == pytest.approx(100 * 1 / 4)
    assert result["f1"] == pytest.approx(100 * (1 + 0.8 + 0.5) / 4)
