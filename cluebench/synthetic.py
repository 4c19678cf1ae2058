"""Tiny random models and small synthetic data sets in the official CLUE layouts.

Used by the README demo and the tests: nothing is downloaded. Each label has its own
signature character placed in the text, so a tiny model can learn the tasks in seconds.
"""
import json
import os
import random

from .classification import DASH_LABEL_TASKS, label_list

SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", "[unused1]"]
SIGNATURES = [chr(0x4E00 + i) for i in range(120)]  # one per label (IFLYTEK has 119)
FILLER = [chr(0x4E00 + i) for i in range(120, 420)]
PRONOUNS = ["他", "她", "它", "他们"]
TINY_CONFIG = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                   max_position_embeddings=512)


def vocabulary():
    symbols = list("0123456789abcdefghijklmnopqrstuvwxyz") + list("，。！？；：、“”（）_[]-,.!?;:\"'()#")
    words = SPECIALS + SIGNATURES + FILLER + [p for p in PRONOUNS if len(p) == 1] + symbols
    return list(dict.fromkeys(words)) + ["##" + s for s in "0123456789abcdefghijklmnopqrstuvwxyz"]


def build_tiny_model(path, arch="ernie", **config):
    """save_pretrained a randomly initialised 2-layer backbone and its tokenizer into path."""
    import paddle
    from paddlenlp.transformers import BertConfig, BertModel, BertTokenizer, ErnieConfig, ErnieModel, ErnieTokenizer

    config_cls, model_cls, tokenizer_cls = {"ernie": (ErnieConfig, ErnieModel, ErnieTokenizer),
                                            "bert": (BertConfig, BertModel, BertTokenizer)}[arch]
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
    """One raw record of `task` whose text carries the signature of label index `label`."""
    if task in ("tnews", "iflytek"):
        sentence = _sentence(rng, label)
        if task == "iflytek" and rng.random() < 0.1:
            sentence += "\u2028" + _sentence(rng)  # real IFLYTEK text holds U+2028
        record = {"sentence": sentence}
        record.update({"label_desc": f"desc_{labels[label]}", "keywords": ""} if task == "tnews"
                      else {"label_des": f"des_{labels[label]}"})
        return record
    if task == "csl":
        keywords = [_sentence(rng, None, 2, 3) for _ in range(rng.randint(2, 4))]
        keywords[0] += SIGNATURES[label]
        return {"abst": _sentence(rng, None, 30, 60), "keyword": keywords}
    if task == "cluewsc2020":
        noun, pronoun = _sentence(rng, None, 2, 3), rng.choice(PRONOUNS)
        before, middle, after = _sentence(rng, label, 3, 6), _sentence(rng, None, 3, 8), _sentence(rng, None, 2, 6)
        first, second = (noun, pronoun) if rng.random() < 0.8 else (pronoun, noun)
        text = before + first + middle + second + after
        i, j = len(before), len(before) + len(first) + len(middle)
        n, p = (i, j) if first == noun else (j, i)
        return {"text": text, "target": {"span1_index": n, "span1_text": noun, "span2_index": p,
                                         "span2_text": pronoun}}
    return {"sentence1": _sentence(rng, label), "sentence2": _sentence(rng)}


def write_task(data_dir, task, n_train=64, n_dev=32, n_test=24, seed=0):
    """Write <data_dir>/<task>_public/ with train, dev, test (and test1.0, labels.json where CLUE has them)."""
    rng = random.Random(f"{task}-{seed}")
    labels = label_list(task)
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

    dashes = 3 if task in DASH_LABEL_TASKS else 0
    dump("train.50k.json" if task == "ocnli" else "train.json", labelled(n_train, dashes))
    dump("dev.json", labelled(n_dev, dashes))
    dump("test.json", test(n_test, task != "csl"))
    if task in ("tnews", "cluewsc2020"):
        dump("test1.0.json", test(n_test, True))
    if task == "tnews":
        dump("labels.json", [{"label": label, "label_desc": f"desc_{label}"} for label in labels])
    return folder
