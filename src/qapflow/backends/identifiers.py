"""Sanitise names before they reach generated C++/Verilog."""

from __future__ import annotations

import keyword
import re

CPP_KEYWORDS = {
    "auto", "break", "case", "char", "class", "const", "continue", "default", "delete", "do",
    "double", "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
    "namespace", "new", "operator", "private", "protected", "public", "register", "return",
    "short", "signed", "sizeof", "static", "struct", "switch", "template", "this", "typedef",
    "union", "unsigned", "virtual", "void", "volatile", "while", "module", "input", "output",
    "wire", "reg", "begin", "end",
}


def sanitize(name: str, fallback: str = "x") -> str:
    """A valid C++ and Verilog identifier made from `name` (letters, digits, underscore)."""
    text = re.sub(r"[^0-9A-Za-z_]", "_", name or "")
    text = re.sub(r"_+", "_", text).strip("_") or fallback
    if text[0].isdigit():
        text = f"{fallback}_{text}"
    if text in CPP_KEYWORDS or keyword.iskeyword(text):
        text = f"{text}_"
    return text
