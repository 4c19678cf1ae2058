"""Tiny random models and small synthetic data sets in the official CLUE layouts.

Used by the README demo and the tests: nothing is downloaded. Each label has its own
signature character placed in the text, so a tiny model can learn the tasks in seconds.
"""

import json
import os
import random

from . import tasks

SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", "[unused1]"]
SIGNATURES = [chr(0x4E00 + i) for i in range(120)]  # one per label (IFLYTEK has 119)
FILLER = [chr(0x4E00 + i) for i in range(120, 420)]
PRONOUNS = ["他", "她", "它", "他们"]
TINY_CONFIG = dict(
    hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, max_position_embeddings=512
)


def vocabulary():
    symbols = list("0123456789abcdefghijklmnopqrstuvwxyz") + list("，。！？；：、“”（）_[]-,.!?;:\"'()#")
    words = SPECIALS + SIGNATURES + FILLER + [p for p in PRONOUNS if len(p) == 1] + symbols
    return list(dict.fromkeys(words)) + ["##" + s for s in "0123456789abcdefghijklmnopqrstuvwxyz"]


def build_tiny_model(path, arch="ernie", **config):
    """save_pretrained a randomly initialised 2-layer backbone and its tokenizer into path."""
    import paddle
    from paddlenlp.transformers import BertConfig, BertModel, BertTokenizer, ErnieConfig, ErnieModel, ErnieTokenizer

    config_cls, model_cls, tokenizer_cls = {
        "ernie": (ErnieConfig, ErnieModel, ErnieTokenizer),
        "bert": (BertConfig, BertModel, BertTokenizer),
    }[arch]
    os.makedirs(path, exist_ok=True)
    vocab_file = os.path.join(path, "vocab.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        f.write("\n".join(vocabulary()) + "\n")
    paddle.seed(1234)
    model = model_cls(config_cls(vocab_size=len(vocabulary()), **dict(TINY_CONFIG, **config)))
    model.save_pretrained(path)
    tokenizer_cls(vocab_file).save_pretrained(path)
    return path


def _sentence(rng, label=None, low=8, high=20):
    chars = [rng.choice(FILLER) for _ in range(rng.randint(low, high))]
    if label is not None:
        chars.insert(rng.randrange(len(chars) + 1), SIGNATURES[label])
    return "".join(chars)


def _record(task, rng, label, labels):
    """One raw record of `task` (by its text form) whose text carries the signature of label index `label`."""
    form, *fields = tasks.get(task).text
    if form == "single":
        sentence = _sentence(rng, label)
        if task == "iflytek" and rng.random() < 0.1:
            sentence += "\u2028" + _sentence(rng)  # real IFLYTEK text holds U+2028
        record = {fields[0]: sentence}
        record.update(
            {"label_desc": f"desc_{labels[label]}", "keywords": ""}
            if task == "tnews"
            else {"label_des": f"des_{labels[label]}"}
        )
        return record
    if form == "keywords":
        keywords = [_sentence(rng, None, 2, 3) for _ in range(rng.randint(2, 4))]
        keywords[0] += SIGNATURES[label]
        return {"abst": _sentence(rng, None, 30, 60), "keyword": keywords}
    if form == "wsc":
        noun, pronoun = _sentence(rng, None, 2, 3), rng.choice(PRONOUNS)
        before, middle, after = _sentence(rng, label, 3, 6), _sentence(rng, None, 3, 8), _sentence(rng, None, 2, 6)
        first, second = (noun, pronoun) if rng.random() < 0.8 else (pronoun, noun)
        text = before + first + middle + second + after
        i, j = len(before), len(before) + len(first) + len(middle)
        n, p = (i, j) if first == noun else (j, i)
        return {"text": text, "target": {"span1_index": n, "span1_text": noun, "span2_index": p, "span2_text": pronoun}}
    return {fields[0]: _sentence(rng, label), fields[1]: _sentence(rng)}


def write_task(data_dir, task, n_train=64, n_dev=32, n_test=24, seed=0):
    """Write <data_dir>/<task>_public/ with train, dev, test (and test1.0, labels.json where CLUE has them)."""
    rng = random.Random(f"{task}-{seed}")
    spec = tasks.get(task)
    labels = list(spec.labels)
    folder = os.path.join(data_dir, f"{task}_public")
    os.makedirs(folder, exist_ok=True)

    def dump(name, records):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

    def labelled(n, dashes=0):
        records = []
        for k in range(n):
            label = k % len(labels)
            records.append(dict(_record(task, rng, label, labels), label=labels[label]))
        for r in rng.sample(records, dashes):
            r["label"] = "-"
        return records

    def test(n, sequential):
        ids = list(range(n)) if sequential else rng.sample(range(10 * n), n)  # CSL's ids are not 0..N-1
        return [dict(_record(task, rng, rng.randrange(len(labels)), labels), id=i) for i in ids]

    dashes = 3 if spec.dash_label else 0
    dump(spec.files["train"][0], labelled(n_train, dashes))
    dump(spec.files["dev"][0], labelled(n_dev, dashes))
    dump(spec.files["test"][0], test(n_test, task != "csl"))
    if "test1.0" in spec.files:
        dump(spec.files["test1.0"][0], test(n_test, True))
    if task == "tnews":
        dump("labels.json", [{"label": label, "label_desc": f"desc_{label}"} for label in labels])
    return folder


def _dump_json(path, obj, lines=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        if lines:
            f.writelines(json.dumps(o, ensure_ascii=False) + "\n" for o in obj)
        else:
            json.dump(obj, f, ensure_ascii=False)


def write_cmrc2018(data_dir, n_train=24, n_dev=12, n_test=8, seed=0):
    """SQuAD-style CMRC2018 files; each dev question has three gold answers, one marked -1 as in real dev."""
    rng = random.Random(f"cmrc-{seed}")
    folder = os.path.join(data_dir, "cmrc2018_public")

    def split(name, n, answers_per_question, test=False):
        paragraphs = []
        for p in range(n):
            context = _sentence(rng, None, 60, 160)
            qas = []
            for q in range(2):
                start = rng.randrange(len(context) - 6)
                text = context[start : start + rng.randint(2, 5)]
                golds = [{"text": text, "answer_start": start}] * answers_per_question
                if answers_per_question > 1:
                    golds[-1] = {"text": text + "。", "answer_start": -1}  # paraphrased gold, no position
                if test:
                    golds = [{"text": f"FAKE_ANSWER_{k}", "answer_start": -1} for k in (1, 2, 3)]
                qas.append(
                    {
                        "question": text[:1] + _sentence(rng, None, 4, 10) + "？",
                        "id": f"{name.upper()}_{p}_QUERY_{q}",
                        "answers": golds,
                    }
                )
            paragraphs.append({"id": f"{name.upper()}_{p}", "context": context, "qas": qas})
        _dump_json(
            os.path.join(folder, f"{name}.json"),
            {"version": "v1.0", "data": [{"paragraphs": [p], "id": p["id"], "title": "t"} for p in paragraphs]},
        )

    split("train", n_train, 1)
    split("dev", n_dev, 3)
    split("test", n_test, 1, test=True)
    return folder


def write_c3(data_dir, n_train=16, n_dev=8, n_test=6, seed=0, marked=False):
    """C3 files: d-/m- train and dev documents with 2 to 4 choices per question, test1.1 with question ids.
    The answer is drawn at random; marked=True puts a signature character into it (and into one choice of
    each test question), so that a tiny model can learn to pick it."""
    rng = random.Random(f"c3-{seed}")
    folder = os.path.join(data_dir, "c3_public")
    question_id = iter(range(500, 10**6, 7))

    def documents(n, test):
        docs = []
        for d in range(n):
            turns = [_sentence(rng, None, 8, 30) for _ in range(rng.randint(1, 3))]
            questions = []
            for _ in range(rng.randint(1, 2)):
                choices = list(dict.fromkeys(_sentence(rng, None, 2, 5) for _ in range(rng.randint(2, 4))))
                if marked:  # a character no other text holds (FILLER lacks it): choices stay distinct
                    k = rng.randrange(len(choices))
                    choices[k] = SIGNATURES[0] + choices[k]
                item = {"question": _sentence(rng, None, 4, 10) + "?", "choice": choices}
                if test:
                    item["id"] = next(question_id)
                else:
                    item["answer"] = choices[k] if marked else rng.choice(choices)
                questions.append(item)
            docs.append([turns, questions] if test else [turns, questions, f"{d}-{rng.randint(1, 999)}"])
        return docs

    for prefix in ("d", "m"):
        _dump_json(os.path.join(folder, f"{prefix}-train.json"), documents(n_train // 2, False))
        _dump_json(os.path.join(folder, f"{prefix}-dev.json"), documents(n_dev // 2, False))
    _dump_json(os.path.join(folder, "test1.1.json"), documents(n_test, True))
    return folder


def write_chid(data_dir, n_train=8, n_dev=4, n_test=3, seed=0):
    """CHID files: rows of 10 candidate idioms and passages with #idiomNNNNNN# blanks, answers apart."""
    rng = random.Random(f"chid-{seed}")
    folder = os.path.join(data_dir, "chid_public")

    def split(name, n, first_tag, labelled):
        rows, answers, tag = [], {}, first_tag
        for _ in range(n):
            candidates = ["".join(rng.choice(FILLER) for _ in range(4)) for _ in range(10)]
            passages, used = [], rng.sample(range(10), 10)
            for _ in range(rng.randint(1, 2)):
                text = _sentence(rng, None, 5, 30)
                for _ in range(rng.randint(1, 3)):
                    text += f"#idiom{tag:06d}#“{_sentence(rng, None, 5, 30)}”"
                    answers[f"#idiom{tag:06d}#"] = used.pop()
                    tag += 1
                passages.append(text)
            rows.append({"candidates": candidates, "content": passages})
        _dump_json(os.path.join(folder, f"{name}.json"), rows, lines=True)
        if labelled:
            _dump_json(os.path.join(folder, f"{name}_answer.json"), answers)

    split("train", n_train, 0, True)
    split("dev", n_dev, 300000, True)
    split("test1.1", n_test, 577157, False)
    return folder
