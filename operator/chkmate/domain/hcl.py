"""Parse and check Terraform files with python-hcl2. Pure (parses text handed in; no file access).

Parses are cached by content hash: python-hcl2 takes ~50 ms for a 300-line file (FACTS.md).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from typing import Any

import hcl2
import lark

HCL_SUFFIXES = (".tf", ".tfvars", ".hcl")
JSON_SUFFIXES = (".tf.json", ".tfvars.json")
PARSE_CACHE_SIZE = 4096


@dataclasses.dataclass(frozen=True)
class HCLError:
    """Where and why a file fails to parse."""

    path: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        if self.line is not None and self.column is not None:
            where += f":{self.column}"
        return f"{where}: {self.message}"


def is_terraform_file(path: str) -> bool:
    return path.endswith(HCL_SUFFIXES) or path.endswith(JSON_SUFFIXES)


def check(path: str, text: str) -> HCLError | None:
    """None when ``text`` parses as what its file name says, else the first error found."""
    if path.endswith(JSON_SUFFIXES):
        try:
            json.loads(text)
        except json.JSONDecodeError as e:
            return HCLError(path, e.lineno, e.colno, e.msg)
        return None
    if not path.endswith(HCL_SUFFIXES):
        return None
    try:
        parse(text)
    except lark.exceptions.UnexpectedInput as e:
        return HCLError(path, getattr(e, "line", None), getattr(e, "column", None), _first_line(str(e)))
    except (lark.exceptions.LarkError, ValueError) as e:
        return HCLError(path, None, None, _first_line(str(e)) or type(e).__name__)
    return None


def check_files(files: dict[str, str]) -> list[HCLError]:
    """Every parse error of the Terraform files, in path order."""
    errors = (check(path, files[path]) for path in sorted(files))
    return [error for error in errors if error is not None]


def parse(text: str) -> dict[str, Any]:
    """The classic (≤7 style) dict shape of an HCL document; cached by content hash."""
    return _parse_cached(hashlib.sha256(text.encode()).hexdigest(), text.removeprefix("\ufeff"))


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_cached(digest: str, text: str) -> dict[str, Any]:
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    result: dict[str, Any] = hcl2.loads(text, serialization_options=options)
    return result


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else ""
