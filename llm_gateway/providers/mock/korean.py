"""Korean grammar the mock's sentences need: the particle that fits the word before it (을/를, 은/는, ...).

A Korean particle depends on whether the previous syllable ends in a consonant (받침). Words that end in
digits or Latin letters are read aloud the Korean way (`12시간`, `500ml` → 밀리리터, `290g` → 그램).
"""

from __future__ import annotations

import re

__all__ = ["has_hangul", "josa", "particle"]

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
# Digits as read in Korean: 일 삼 육 칠 팔 십 end in a consonant; 이 사 오 구 do not (0: 영).
_DIGIT_FINAL = {"0": True, "1": True, "2": False, "3": True, "4": False, "5": False, "6": True, "7": True,
                "8": True, "9": False}
_DIGIT_RIEUL = {"1", "7", "8"}  # 일 칠 팔 end in ㄹ, which takes 로 rather than 으로
# Units as read in Korean: 그램, 킬로그램 end in a consonant; 밀리리터, 센티미터, 리터 do not.
_UNITS = (("kg", True), ("mg", True), ("g", True), ("ml", False), ("cm", False), ("mm", False), ("km", False),
          ("l", False), ("w", False), ("v", False), ("h", False), ("%", False))
# Latin letters as read in Korean: 엘 엠 엔 알 end in a consonant (엘, 알 in ㄹ).
_LATIN_FINAL = {"l": True, "m": True, "n": True, "r": True}
_PAIRS = {
    "은": ("은", "는"), "는": ("은", "는"), "이": ("이", "가"), "가": ("이", "가"),
    "을": ("을", "를"), "를": ("을", "를"), "과": ("과", "와"), "와": ("과", "와"),
    "으로": ("으로", "로"), "로": ("으로", "로"), "이에요": ("이에요", "예요"), "예요": ("이에요", "예요"),
    "이라": ("이라", "라"), "라": ("이라", "라"), "이나": ("이나", "나"), "나": ("이나", "나"),
}


def has_hangul(text: str) -> bool:
    """Whether `text` has any Hangul syllable."""
    return bool(_HANGUL.search(text))


def _final(word: str) -> tuple[bool, bool]:
    """(ends in a consonant, that consonant is ㄹ) for the last sounded character of `word`."""
    stripped = re.sub(r"[\s)\]'\"’”.,!?·]+$", "", word)
    if not stripped:
        return False, False
    last = stripped[-1]
    if "\uac00" <= last <= "\ud7a3":
        coda = (ord(last) - 0xAC00) % 28
        return coda != 0, coda == 8
    if last.isdigit():
        return _DIGIT_FINAL[last], last in _DIGIT_RIEUL
    lowered = stripped.lower()
    for unit, final in _UNITS:
        if lowered.endswith(unit) and len(lowered) > len(unit) and lowered[-len(unit) - 1].isdigit():
            return final, False
    if last.isalpha() and last.isascii():
        return _LATIN_FINAL.get(last.lower(), False), last.lower() in ("l", "r")
    return False, False


def particle(word: str, kind: str) -> str:
    """The form of particle `kind` (either form may be given: `을` or `를`) that follows `word`."""
    pair = _PAIRS.get(kind)
    if pair is None:
        return kind
    final, rieul = _final(word)
    if pair[0] == "으로":
        return "로" if not final or rieul else "으로"
    return pair[0] if final else pair[1]


def josa(word: str, kind: str) -> str:
    """`word` followed by the right form of particle `kind`: josa("텀블러", "을") → "텀블러를"."""
    return word + particle(word, kind)
