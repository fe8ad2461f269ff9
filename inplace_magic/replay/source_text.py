"""A source file's text, and what it takes to write it back as it was: encoding, BOM, line endings.

Python reads a script as PEP 263 says (a UTF-8 BOM, else a ``coding:`` line in the first two lines,
else UTF-8) with universal newlines; :meth:`SourceText.decode` does the same. :meth:`SourceText.encode`
turns edited text back into bytes: every line the edit kept or rewrote keeps its own line ending
(CRLF, LF, even a mix), an inserted line takes the ending of the line above it, and the encoding
and BOM are the file's. So ``--write`` (and the panel's kernel-side writes) change only the lines they edit.
"""

from __future__ import annotations

import codecs
import difflib
import io
import re
import tokenize
from collections import Counter
from dataclasses import dataclass

# the line endings Python's universal newlines know (str.splitlines also splits at \f, \x1c, ...)
_LINE = re.compile(r"([^\r\n]*)(\r\n|\r|\n|$)")


def _lines(decoded: str) -> list[tuple[str, str]]:
    """(content, ending) per line; the last line's ending is "" when the text does not end with one."""
    found = [(m.group(1), m.group(2)) for m in _LINE.finditer(decoded)]
    if found and found[-1] == ("", ""):
        found.pop()  # the empty match at the very end
    return found


@dataclass(frozen=True)
class SourceText:
    raw: bytes  # the file's bytes as read
    text: str  # decoded, BOM dropped, every line ending turned into "\n" (as Python's open() does)
    encoding: str  # "utf-8-sig" when the file starts with a BOM: it is written back with it

    @classmethod
    def decode(cls, raw: bytes, *, python: bool = True) -> SourceText:
        """``raw`` decoded; with ``python`` a PEP 263 coding line counts (notebooks are UTF-8 JSON).

        Raises ``UnicodeDecodeError``, or ``SyntaxError`` for an unknown coding name, as Python does
        when it runs the file.
        """
        if python:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        else:
            encoding = "utf-8-sig" if raw.startswith(codecs.BOM_UTF8) else "utf-8"
        text = "".join(content + ("\n" if ending else "") for content, ending in _lines(raw.decode(encoding)))
        return cls(raw, text, encoding)

    @classmethod
    def read(cls, path: str, *, python: bool = True) -> SourceText:
        with open(path, "rb") as handle:
            return cls.decode(handle.read(), python=python)

    @property
    def newline(self) -> str:
        r"""The file's usual line ending ("\n" for a file without any)."""
        endings = Counter(ending for _, ending in _lines(self.raw.decode(self.encoding)) if ending)
        return endings.most_common(1)[0][0] if endings else "\n"

    def encode(self, text: str) -> bytes:
        r"""``text`` (lines ending in "\n") as this file's bytes.

        Raises ``UnicodeEncodeError`` when ``text`` has characters the file's encoding cannot hold.
        """
        old = _lines(self.raw.decode(self.encoding))
        new = text.split("\n")
        ends_with_newline = new[-1] == ""
        if ends_with_newline:
            new.pop()
        endings = [self.newline] * len(new)
        matcher = difflib.SequenceMatcher(None, [c for c, _ in old], new, autojunk=False)
        for _, i1, i2, j1, j2 in matcher.get_opcodes():
            # a kept or rewritten line keeps the ending of the line it was; an inserted one follows its
            # neighbour above
            for k in range(j2 - j1):
                if k < i2 - i1:
                    endings[j1 + k] = old[i1 + k][1] or self.newline
                elif j1 + k > 0:
                    endings[j1 + k] = endings[j1 + k - 1]
        if new and not ends_with_newline:
            endings[-1] = ""
        return "".join(c + e for c, e in zip(new, endings, strict=True)).encode(self.encoding)
