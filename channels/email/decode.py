"""Lenient decoding of what real mail carries: body charsets, raw 8-bit headers, HTML.

Mail in the wild declares the wrong charset, none at all, or a legacy one Python spells differently. Every
function here returns text and never raises: a message with garbled text is still a contact worth logging.
"""

from __future__ import annotations

import codecs
import logging
import re

log = logging.getLogger(__name__)

# Labels that mail uses for a charset whose superset decodes real-world mail better.
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "iso-2022-jp": "iso2022_jp_2",
    "csiso2022jp": "iso2022_jp_2",
    "shift-jis": "cp932",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "windows-874": "cp874",
    "x-mac-cyrillic": "mac_cyrillic",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode20utf8": "utf-8",
}

HTML_MAX_CHARS = 100_000
"""HTML beyond this is converted by the plain tag stripper instead of html2text (linear but slow on markup-heavy
megabytes): the text is kept whole either way."""


def codec_for(charset: str | None) -> str | None:
    """The Python codec for a mail charset label, or None when it is missing or unknown."""
    if not charset:
        return None
    label = str(charset).strip().strip('"').strip("'").lower()
    label = _SUPERSETS.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):
        return None


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str]:
    """Decode body bytes leniently and return the text and the codec used ("+replace" when bytes were lost).

    Pure 7-bit data goes to the declared codec (ISO-2022-JP and UTF-7 are 7-bit). Otherwise valid UTF-8 wins
    first — mislabelled UTF-8 is the most common lie, and legacy-encoded text is almost never valid UTF-8 —
    then the declared charset, then the declared charset lossily, then cp1252 lossily.
    """
    declared = codec_for(charset)
    order = (declared, "utf-8") if data.isascii() else ("utf-8", declared)
    for codec in order:
        if codec is None:
            continue
        try:
            return data.decode(codec), codec
        except (UnicodeDecodeError, LookupError, ValueError):
            continue
    if declared is None:
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            pass
    codec = declared or "cp1252"
    try:
        return data.decode(codec, errors="replace"), codec + "+replace"
    except (LookupError, ValueError):
        return data.decode("cp1252", errors="replace"), "cp1252+replace"


def fix_header_text(value: str, hint_charset: str | None = None) -> str:
    """Repair a header the parser decoded with surrogate escapes (raw 8-bit bytes, no RFC 2047 wrapping).

    Such headers are common in Russian and Chinese mail; they are usually UTF-8, else the body's charset.
    """
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("utf-8", errors="surrogateescape")
    text, _ = decode_bytes(data, hint_charset) if hint_charset else decode_bytes(data, "utf-8")
    return text


def decode_rfc2047(value: str, hint_charset: str | None = None) -> str:
    """Decode encoded words by hand: the fallback when the modern header parser gives up on a header."""
    from email.header import decode_header

    try:
        chunks = decode_header(value)
    except Exception:  # the legacy decoder has its own corner cases; keep the raw text then
        return fix_header_text(value, hint_charset)
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, charset or hint_charset)[0])
        else:
            out.append(fix_header_text(chunk, hint_charset))
    return "".join(out)


_TAG = re.compile(r"<[^>]{0,2000}>")
_SKIP_BLOCKS = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)


def html_to_text(html: str) -> str:
    """Readable text from an HTML mail body (html2text; a tag stripper if that fails on broken markup)."""
    if len(html) > HTML_MAX_CHARS:
        return _strip_tags(html)
    try:
        import html2text

        conv = html2text.HTML2Text()
        conv.body_width = 0
        conv.ignore_images = True
        conv.ignore_emphasis = True
        conv.ignore_tables = False
        conv.unicode_snob = True
        conv.single_line_break = False
        text = conv.handle(html)
    except Exception as exc:  # html2text raises on some broken markup; the crude text is better than none
        log.info("html2text failed (%s: %s); falling back to tag stripping", type(exc).__name__, exc)
        return _strip_tags(html)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _strip_tags(html: str) -> str:
    """The crude text of any HTML, in linear time: tags and script/style blocks dropped, entities decoded."""
    import html as html_mod

    text = html_mod.unescape(_TAG.sub(" ", _SKIP_BLOCKS.sub(" ", html)))
    return re.sub(r"\n{3,}", "\n\n", text).strip()
