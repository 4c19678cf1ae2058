"""CMRC2018 exact match and F1, in percent.

`upstream`: what the PaddleNLP scripts report (PaddleNLP's squad_evaluate in its Chinese mode:
normalised strings, F1 over the characters of the first whitespace-delimited chunk). The
README's numbers were made with it, so it is the default.

`official`: the CMRC2018 evaluation: text lower-cased and stripped, cut into single Chinese
characters and, between them, NLTK words; punctuation from the official list removed; F1 from
the longest common run of segments; EM on the strings without punctuation; each question scored
against its best gold answer; questions without a prediction score 0.
"""

from nltk.tokenize import NLTKWordTokenizer
from paddlenlp.metrics.squad import squad_evaluate

# The official list; its "……" entry is two characters, so a lone "…" is kept, as there.
PUNCTUATION = frozenset("-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』")
_words = NLTKWordTokenizer()


def upstream_scores(references, predictions):
    """references: {question id: [gold texts]}; predictions: {question id: text} -> {"em", "f1"}."""
    examples = [
        {"id": qid, "answers": {"text": golds, "answer_start": [0] * len(golds)}} for qid, golds in references.items()
    ]
    result = squad_evaluate(examples, predictions, is_whitespace_splited=False)  # logs the dict, as upstream
    return {"em": result["exact"], "f1": result["f1"]}


def segments(text):
    """Official mixed segmentation with punctuation removed."""
    out, run = [], ""
    for char in str(text).lower().strip():
        if char in PUNCTUATION:
            continue
        if "\u4e00" <= char <= "\u9fa5":
            if run:
                out.extend(_words.tokenize(run))
                run = ""
            out.append(char)
        else:
            run += char
    if run:
        out.extend(_words.tokenize(run))
    return out


def longest_common_run(a, b):
    """Length of the longest contiguous run of segments shared by a and b."""
    best, previous = 0, [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                current[j + 1] = previous[j] + 1
                best = max(best, current[j + 1])
        previous = current
    return best


def official_f1(gold, prediction):
    gold_segments, predicted = segments(gold), segments(prediction)
    common = longest_common_run(gold_segments, predicted)
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold_segments)
    return 2 * precision * recall / (precision + recall)


def official_em(gold, prediction):
    def strip(text):
        return "".join(c for c in str(text).lower().strip() if c not in PUNCTUATION)

    return float(strip(gold) == strip(prediction))


def official_scores(references, predictions):
    em = f1 = 0.0
    for qid, golds in references.items():
        if qid not in predictions or not golds:
            continue
        em += max(official_em(g, predictions[qid]) for g in golds)
        f1 += max(official_f1(g, predictions[qid]) for g in golds)
    total = max(len(references), 1)
    return {"em": 100 * em / total, "f1": 100 * f1 / total}


def cmrc_scores(references, predictions, variant="upstream"):
    return (official_scores if variant == "official" else upstream_scores)(references, predictions)
