"""Text clean-up before parsing: width, punctuation, spaces and Chinese numerals.

Addresses arrive typed on phones, copied from spreadsheets and read out over
the hotline, so the same place is written ``中山南路１２３号 三号楼``,
``中山南路123号3号楼`` or ``中山南路一百二十三号3#楼``. :func:`clean_text`
maps all of them to one spelling; the parser then only deals with ASCII
digits and upper-case letters.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MARKERS", "chinese_numeral_to_digits", "clean_text"]

#: Markers that mean "a number goes here" after a numeral: door number,
#: building, unit, floor, room. Numerals are converted only before one of
#: these, so numerals inside names (八一路, 五星社区, 三元里) stay as written.
MARKERS = ("号", "#", "幢", "栋", "座", "单元", "层", "楼", "室", "户")

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4}
_DIGITS |= {"五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_POWERS = {"十": 10, "百": 100, "千": 1000}
_NUMERAL = "".join(_DIGITS) + "".join(_POWERS)

# 第 ("ordinal") is dropped with the numeral it introduces: 第三层 is 3层.
_NUMERAL_RUN = re.compile(rf"第?([{_NUMERAL}]+)(?=(?:{'|'.join(MARKERS)}))")
# ... and after 之, which introduces a sub-number: 105号之一 is 105-1号.
_AFTER_ZHI = re.compile(rf"(?<=之)([{_NUMERAL}]+)")
_ORDINAL_DIGITS = re.compile(rf"第(\d+)(?=(?:{'|'.join(MARKERS)}))")
# Dashes come in many widths from input methods; only ASCII "-" is kept.
_DASHES = re.compile(r"[‐‑‒–—―−～~]")
# 123号之1 and 123之1号 are the sub-number 123-1号 (之 reads "of").
_SUB_AFTER = re.compile(r"(\d+)号之(\d+)")
_SUB_BETWEEN = re.compile(r"(\d)之(\d)")
# Separators carry no meaning in a standard address; "-" and "#" do (3-2-302, 3#楼).
_NOISE = re.compile(r"[\s,.;:!?'\"`()\[\]{}<>/\\|，。、；：！？“”‘’（）【】《》〈〉「」『』·]+")


def chinese_numeral_to_digits(numeral: str) -> str:
    """Return the ASCII digits of a Chinese numeral.

    A numeral with 十/百/千 is read by place value (一百零五 is 105); one
    without is read digit by digit, as room numbers are spoken (三〇二 is
    302, 零三零二 keeps its leading zero).

    Parameters
    ----------
    numeral : str
        Chinese numeral characters only (零〇一二两三四五六七八九十百千).

    Returns
    -------
    str
        The number in ASCII digits.

    Raises
    ------
    ValueError
        If ``numeral`` is empty or holds another character.

    Examples
    --------
    >>> numerals = ["三", "十二", "二十", "一百零五", "三〇二", "零三零二"]
    >>> [chinese_numeral_to_digits(n) for n in numerals]
    ['3', '12', '20', '105', '302', '0302']
    """
    if not numeral or any(c not in _DIGITS and c not in _POWERS for c in numeral):
        raise ValueError(f"not a Chinese numeral: {numeral!r}")
    if not any(c in _POWERS for c in numeral):
        return "".join(str(_DIGITS[c]) for c in numeral)
    total = 0
    digit = 0
    for c in numeral:
        if c in _DIGITS:
            digit = _DIGITS[c]
        else:
            # A bare 十 at the start means 一十 (十二 is 12).
            total += (digit or 1) * _POWERS[c]
            digit = 0
    return str(total + digit)


def clean_text(text: str, /) -> str:
    """Return ``text`` in the one spelling the parser reads.

    Full-width characters become ASCII (NFKC), letters upper case, dashes
    ``-``; spaces and punctuation other than ``-`` and ``#`` go; Chinese
    numerals before a number marker (号, 幢, 栋, 座, 单元, 层, 楼, 室, 户)
    become digits, dropping an ordinal 第; ``123号之1`` and ``123之1号``
    become ``123-1号``.

    Parameters
    ----------
    text : str
        An address as typed.

    Returns
    -------
    str
        The cleaned text.

    Examples
    --------
    >>> clean_text("中山南路１２３号 三号楼 二单元 第五层")
    '中山南路123号3号楼2单元5层'
    >>> clean_text("八一路一百零五号之一, a座")
    '八一路105-1号A座'
    """
    text = unicodedata.normalize("NFKC", text)
    text = _DASHES.sub("-", text)
    text = _NOISE.sub("", text)
    text = _NUMERAL_RUN.sub(lambda m: chinese_numeral_to_digits(m.group(1)), text)
    text = _AFTER_ZHI.sub(lambda m: chinese_numeral_to_digits(m.group(1)), text)
    text = _ORDINAL_DIGITS.sub(r"\1", text)
    text = _SUB_AFTER.sub(r"\1-\2号", text)
    text = _SUB_BETWEEN.sub(r"\1-\2", text)
    return text.upper()
