"""Text from outside (HL7 fields, file names, user input) made safe to print on a terminal or in a log.

Control characters are escaped, never passed through: an escape sequence in a patient
name must not repaint a clerk's terminal, and a line break inside a logged value must
not forge a log line. Bidirectional overrides and invisible separators go too, so what
a log shows is what it holds.
"""

from __future__ import annotations

import logging
import re

# C0 and C1 controls, DEL, zero-width and bidi formatting characters, line and paragraph separators.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escape_json(found: re.Match[str]) -> str:
    return f"\\u{ord(found.group()):04x}"


def printable(text: str) -> str:
    """``text`` with every control character written as an escape (``\\x1b``, ``\\u202e``)."""
    return _UNPRINTABLE.sub(_escape, text)


def printable_json(text: str) -> str:
    """A JSON document with the control characters json.dumps leaves raw (DEL, C1, bidi) escaped as ``\\uXXXX``."""
    return _UNPRINTABLE.sub(_escape_json, text)


class PrintableFormatter(logging.Formatter):
    """Escapes control characters in each log line's message; a traceback keeps its line breaks."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)
