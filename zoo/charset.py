"""Charset: the characters a text recognizer reads, and the ids its CTC head uses for them.

    charset = Charset("0123456789abcdefghijklmnopqrstuvwxyz")
    charset.encode("a1")                 # [11, 2]   (ids 1..N; 0 is the CTC blank)
    charset.encode_batch(["a1", "b"])    # [[11, 2], [12, -1]]  padded with -1
    charset.decode([11, 2, -1, -1])      # "a1"      (padding and blanks are skipped)
    charset.num_classes                  # 37 = 36 characters + the blank

The id convention is the one of `losses.sequence`: class `BLANK_INDEX` = 0 of the logits is
the blank, character i of the charset is id i + 1, and label rows are padded at the end with
`PAD_VALUE` = -1 (never a valid id). Decoders pad their output with -1 too, so
`charset.decode_batch(ids)` reads a decoded batch and a label batch alike.
"""

from __future__ import annotations

import string

import numpy as np

import keras
from losses.sequence import BLANK_INDEX, PAD_VALUE

DIGITS = string.digits
# The 36 case-insensitive classes of the CRNN paper's lexicon-free setting (plus the blank).
LOWERCASE_ALPHANUMERIC = string.digits + string.ascii_lowercase
UPPERCASE_ALPHANUMERIC = string.digits + string.ascii_uppercase
PUNCTUATION = "-.,:/'&()#+"
# Named character sets for `--charset` (text task): what the synthetic lines are drawn from.
CHARSETS = {
    "lower": LOWERCASE_ALPHANUMERIC,
    "upper": UPPERCASE_ALPHANUMERIC,
    "full": string.digits + string.ascii_uppercase + string.ascii_lowercase + PUNCTUATION,
}


@keras.saving.register_keras_serializable(package="losslab")
class Charset:
    """An ordered set of characters; character i has id i + 1 (0 is the CTC blank).

    Args:
        characters: the characters, a string (or a sequence of one-character strings)
            without duplicates. Order matters: it fixes the ids. Defaults to the digits
            and lowercase ASCII letters (the CRNN paper's 36 classes).

    Reference: Shi, Bai, Yao, "An End-to-End Trainable Neural Network for Image-based
    Sequence Recognition and Its Application to Scene Text Recognition", TPAMI 2017
    (arXiv:1507.05717), §3.1 (36 classes + blank).
    """

    def __init__(self, characters=LOWERCASE_ALPHANUMERIC):
        if isinstance(characters, Charset):
            characters = characters.characters
        if not isinstance(characters, str):
            items = list(characters)
            if not all(isinstance(c, str) and len(c) == 1 for c in items):
                raise ValueError(f"characters must be a string or a sequence of single "
                                 f"characters; got {characters!r}")
            characters = "".join(items)
        if not characters:
            raise ValueError("a charset needs at least one character; got an empty string")
        seen = set()
        duplicates = sorted({c for c in characters if c in seen or seen.add(c)})
        if duplicates:
            raise ValueError(f"charset characters must be unique; {duplicates} appear more "
                             f"than once in {characters!r}")
        self.characters = characters
        self._ids = {c: i + 1 for i, c in enumerate(characters)}

    @classmethod
    def from_texts(cls, texts):
        """The sorted set of characters that occur in `texts`."""
        return cls("".join(sorted(set("".join(texts)))))

    def __len__(self):
        return len(self.characters)

    @property
    def num_classes(self) -> int:
        """Classes of the CTC logits: every character plus the blank."""
        return len(self.characters) + 1

    def __contains__(self, character):
        return character in self._ids

    def __eq__(self, other):
        return isinstance(other, Charset) and other.characters == self.characters

    def __hash__(self):
        return hash(self.characters)

    def __repr__(self):
        return f"Charset({self.characters!r})"

    def encode(self, text: str) -> list:
        """Text -> ids 1..N. An unknown character raises ValueError naming it."""
        if not isinstance(text, str):
            raise ValueError(f"encode expects a string; got {type(text).__name__} {text!r}")
        ids = []
        for position, character in enumerate(text):
            if character not in self._ids:
                raise ValueError(f"character {character!r} (position {position} of {text!r}) "
                                 f"is not in the charset {self.characters!r}")
            ids.append(self._ids[character])
        return ids

    def encode_batch(self, texts, max_length=None, pad_value=PAD_VALUE) -> np.ndarray:
        """Texts -> int32 (B, max_length) ids padded at the end with `pad_value`.

        Args:
            texts: a sequence of strings.
            max_length: row width; a longer text raises ValueError. Defaults to None (the
                longest text, at least 1).
            pad_value: the padding id. Defaults to `PAD_VALUE` (-1).
        """
        encoded = [self.encode(text) for text in texts]
        longest = max((len(ids) for ids in encoded), default=0)
        width = max(longest, 1) if max_length is None else int(max_length)
        if longest > width:
            raise ValueError(f"a text has {longest} characters but max_length is {width}")
        batch = np.full((len(encoded), width), pad_value, np.int32)
        for row, ids in enumerate(encoded):
            batch[row, :len(ids)] = ids
        return batch

    def decode(self, ids) -> str:
        """Ids -> text; the padding (any negative id) and the blank (0) are skipped.

        An id above N (no such character) raises ValueError.
        """
        values = np.asarray(ids).reshape(-1)
        if values.size and np.any(values != np.round(values)):
            raise ValueError(f"ids must be integers; got {values.tolist()}")
        characters = []
        for value in values.astype(np.int64).tolist():
            if value < 0 or value == BLANK_INDEX:
                continue
            if value > len(self.characters):
                raise ValueError(f"id {value} is outside the charset: ids are 1..{len(self)} "
                                 f"(0 = blank, negative = padding)")
            characters.append(self.characters[value - 1])
        return "".join(characters)

    def decode_batch(self, ids) -> list:
        """(B, L) ids -> B strings (see `decode`)."""
        values = np.asarray(ids)
        if values.ndim != 2:
            raise ValueError(f"decode_batch expects ids of shape (batch, length); got shape "
                             f"{values.shape}")
        return [self.decode(row) for row in values]

    def get_config(self):
        return {"characters": self.characters}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
