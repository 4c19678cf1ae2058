"""Token ids and character offsets for feature building, fast.

PaddleNLP 2.8.1 has no fast tokenizer for Python 3.11, and its Python WordPiece takes about a
minute for the CMRC2018 dev set. For the BERT-style tokenizers (BertTokenizer, ErnieTokenizer and
their kin: PaddleNLP's BERT BasicTokenizer and WordpieceTokenizer over a vocab.txt), the Rust
`tokenizers` library, set up the same way, gives the same ids and offsets (checked on every
question, context and choice of the real CMRC2018 and C3 dev sets by the tests) about 15 times
faster. Other tokenizers go through the PaddleNLP one.
"""

import unicodedata

from paddlenlp.transformers.bert.tokenizer import BasicTokenizer, WordpieceTokenizer
from paddlenlp.transformers.tokenizer_utils import _is_control
from paddlenlp.utils.log import logger

# PaddleNLP's BasicTokenizer splits on symbols as well as punctuation: Unicode category S*
# and these code points (paddlenlp.transformers.tokenizer_utils._is_symbol).
SYMBOLS = r"[\p{S}\x{00AD}\x{00B2}\x{00BA}\x{3007}\x{00B5}\x{00D8}\x{014B}\x{01B1}]"


class TextEncoder:
    """encode(texts) -> [(ids, offsets)] without special tokens; offsets are (start, end) characters."""

    def __init__(self, tokenizer, fast=True):
        self.tokenizer = tokenizer
        self.rust = _rust_wordpiece(tokenizer) if fast else None
        if self.rust is not None:  # how PaddleNLP's offset routine normalises characters
            basic = tokenizer.basic_tokenizer
            self.lower = basic.do_lower_case
            self.strip = basic.strip_accents is not False if basic.do_lower_case else bool(basic.strip_accents)
        if fast and self.rust is None:
            logger.info(f"{type(tokenizer).__name__}: no fast equivalent, using the PaddleNLP tokenizer")

    @property
    def is_fast(self):
        return self.rust is not None

    def encode(self, texts):
        if self.rust is None:
            return [self._slow(text) for text in texts]
        unk = self.tokenizer.unk_token_id
        out = []
        for text, e in zip(texts, self.rust.encode_batch(list(texts), add_special_tokens=False)):
            out.append((e.ids, self._unk_offsets(text, e.ids, e.offsets) if unk in e.ids else e.offsets))
        return out

    def _unk_offsets(self, text, ids, offsets):
        """PaddleNLP's offsets for [UNK] tokens, which differ from the exact characters Rust reports.

        PaddleNLP starts an [UNK] at the first character after the previous token that survives its
        normalisation; in a run of [UNK]s each but the last covers one character, and the last (or
        a lone one) stretches up to the next token's start, or to the end of the text.
        """
        unk, out = self.tokenizer.unk_token_id, list(offsets)
        for i, token_id in enumerate(ids):
            if token_id != unk:
                continue
            start = out[i - 1][1] if i else 0
            while start < len(text) and not self._kept(text[start]):
                start += 1
            if i + 1 < len(ids) and ids[i + 1] == unk:
                out[i] = (start, start + 1)
            else:
                end = offsets[i + 1][0] if i + 1 < len(ids) else len(text)
                while end > start and not self._kept(text[end - 1]):
                    end -= 1
                out[i] = (start, end)
        return out

    def _kept(self, char):
        """Whether PaddleNLP's offset normalisation keeps the character (lower-casing, accents, controls)."""
        if self.lower:
            char = char.lower()
        if self.strip:
            char = "".join(c for c in unicodedata.normalize("NFD", char) if unicodedata.category(c) != "Mn")
        return any(not (ord(c) == 0 or ord(c) == 0xFFFD or _is_control(c)) for c in char)

    def _slow(self, text):
        encoded = self.tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, return_token_type_ids=False
        )
        return encoded["input_ids"], [tuple(o) for o in encoded["offset_mapping"]]


def _rust_wordpiece(tokenizer):
    basic = getattr(tokenizer, "basic_tokenizer", None)
    wordpiece = getattr(tokenizer, "wordpiece_tokenizer", None)
    if not (
        type(basic) is BasicTokenizer
        and type(wordpiece) is WordpieceTokenizer
        and getattr(tokenizer, "do_basic_tokenize", True)
        and basic.tokenize_chinese_chars
    ):
        return None
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    rust = Tokenizer(
        models.WordPiece(
            vocab=dict(tokenizer.get_vocab()),
            unk_token=wordpiece.unk_token,
            max_input_chars_per_word=wordpiece.max_input_chars_per_word,
        )
    )
    rust.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=True,
        lowercase=basic.do_lower_case,
        strip_accents=basic.do_lower_case if basic.strip_accents is None else basic.strip_accents,
    )
    rust.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.BertPreTokenizer(), pre_tokenizers.Split(Regex(SYMBOLS), behavior="isolated")]
    )
    return rust
