"""Secret redaction for text that leaves the cluster: pull request comments, check runs, events. Pure: no I/O.

Two layers, both replacing what they find with :data:`REDACTED`:

1. Known values (:func:`redact`'s ``secrets``): the values of the credentials Secret and of sensitive
   variables. Each value is also looked for in the forms it takes when it travels: surrounding whitespace
   stripped, JSON-escaped (how Terraform prints strings), URL-encoded, and base64 (standard and URL-safe,
   with and without padding, with the trailing newline ``echo`` adds, and embedded at any position of a longer
   base64 stream, e.g. ``user:password`` in a basic-auth header). Values shorter than
   :data:`MIN_SECRET_LENGTH` are ignored: redacting every ``a`` or ``on`` would shred the text and hide nothing.
   All forms are matched in one pass, longest first, so a value that contains another is redacted whole.
2. Well-known token shapes, whoever they belong to: GitHub tokens (``ghp_``, ``gho_``, ``ghu_``, ``ghs_``,
   ``ghr_``, ``github_pat_``), AWS access key ids (``AKIA``/``ASIA``), PEM private key blocks, the credential of
   ``Authorization`` headers and of ``Bearer`` tokens, and the password of ``scheme://user:password@host`` URLs.

:func:`sensitive_keys` and :func:`secrets_in` decide by name which variables hold secrets, so their values can be
fed to :func:`redact`. What the rules do not catch: a secret transformed any other way (hashed, split, reversed,
hex-encoded), and secrets shorter than four characters.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping

REDACTED = "(redacted)"
MIN_SECRET_LENGTH = 4
# A base64 core (the characters that depend only on the secret) shorter than this would match unrelated base64.
_MIN_BASE64_CORE = 8

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys, as printed on several lines or JSON-escaped on one (``\n``); a block cut before its END
    # line (a truncated output) loses the base64 lines that follow its BEGIN line.
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
            r"(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|(?:(?:\s|\\n)*[A-Za-z0-9+/=]{16,})*)",
            re.DOTALL,
        ),
        REDACTED,
    ),
    # https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{20,255})\b"), REDACTED),
    # Long-term (AKIA) and temporary (ASIA) AWS access key ids.
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), REDACTED),
    # The header's credential after its scheme: `Authorization: Bearer x`, `"authorization" = "token x"`. The
    # scheme is required, as in HTTP: `authorization = "NONE"` (an API Gateway method's setting) is no secret.
    (
        re.compile(r"""(?i)\b(authorization["']?[ \t]*[:=][ \t]*["']?[a-z0-9-]+[ \t]+)[^\s"',;]+"""),
        rf"\g<1>{REDACTED}",
    ),
    (re.compile(r"(?i)\b(Bearer[ \t]+)[A-Za-z0-9._~+/-]{16,}=*"), rf"\g<1>{REDACTED}"),
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), rf"\g<1>{REDACTED}@"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every form of every secret value, and every well-known token shape, replaced."""
    forms = {form for secret in secrets for form in _forms(secret) if len(form) >= MIN_SECRET_LENGTH}
    if forms:
        alternatives = "|".join(re.escape(form) for form in sorted(forms, key=lambda f: (-len(f), f)))
        text = re.sub(alternatives, REDACTED, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _forms(secret: str) -> set[str]:
    forms: set[str] = set()
    for value in {secret, secret.strip()}:
        if len(value) < MIN_SECRET_LENGTH:
            continue
        forms |= {
            value,
            json.dumps(value, ensure_ascii=False)[1:-1],
            urllib.parse.quote(value, safe=""),
            urllib.parse.quote(value),
            urllib.parse.quote_plus(value, safe=""),
        }
        for data in (value.encode(), value.encode() + b"\n"):
            forms |= _base64_forms(data)
    return forms


def _base64_forms(data: bytes) -> set[str]:
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        full = encode(data).decode()
        forms |= {full, full.rstrip("=")}
        for offset in (0, 1, 2):
            core = _base64_core(encode, data, offset)
            if len(core) >= _MIN_BASE64_CORE:
                forms.add(core)
    return forms


def _base64_core(encode: Callable[[bytes], bytes], data: bytes, offset: int) -> str:
    """The characters of ``data``'s encoding that do not depend on its neighbours, when ``data`` starts
    ``offset`` bytes into a 3-byte group of a longer stream."""
    encoded = encode(b"\0" * offset + data).decode().rstrip("=")
    start = (0, 2, 3)[offset]  # characters that mix in the bytes before
    end = len(encoded) - (0 if (offset + len(data)) % 3 == 0 else 1)  # the last one mixes in the bytes after
    return encoded[start:end]


# Words whose presence anywhere in a name marks it sensitive (AWS_SECRET_ACCESS_KEY, TF_TOKEN_..., DB_PASSWD).
_SENSITIVE_PARTS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL")
# Whole words that mark a name sensitive (DB_PASS, API_KEY, apiKey, ACCESSKEY).
_SENSITIVE_WORDS = frozenset({"PASS", "KEY", "KEYS", "APIKEY", "ACCESSKEY", "PRIVATEKEY", "SIGNINGKEY"})
# A key word followed by one of these names the key's metadata, not the key (key_name, kms_key_arn, KEY_VAULT).
_KEY_METADATA = frozenset(
    {"NAME", "NAMES", "ARN", "ALIAS", "PAIR", "VAULT", "RING", "TYPE", "SIZE", "LENGTH", "ALGORITHM", "SPEC", "USAGE"}
    | {"PATH", "FILE", "FORMAT", "ROTATION", "PREFIX"}
)


def is_sensitive_name(name: str) -> bool:
    """Whether an environment variable or Terraform variable named ``name`` holds a secret, judged by its words.

    Sensitive: any word containing SECRET, TOKEN, PASSWORD, PASSWD, PASSPHRASE or CREDENTIAL; the words PASS
    and KEY (also glued: APIKEY, ACCESSKEY). Not sensitive: a KEY that is PUBLIC or followed by a word naming the
    key's metadata (``key_name``, ``kms_key_arn``, ``ssh_public_key``). Words split at ``_``, ``-``, ``.`` and
    camelCase. ``PWD`` (the shell's working directory) is not a password.

    Choice: ``*_KEY_ID`` (``AWS_ACCESS_KEY_ID``) counts as sensitive. It is an identifier rather than the secret,
    but it names a live credential and reveals the account; hiding it from a pull request costs nothing.
    """
    words = _words(name)
    for index, word in enumerate(words):
        if any(part in word for part in _SENSITIVE_PARTS) or word == "PASS":
            return True
        if word in _SENSITIVE_WORDS:
            public = index > 0 and words[index - 1] == "PUBLIC"
            metadata = index + 1 < len(words) and words[index + 1] in _KEY_METADATA
            if not (public or metadata):
                return True
    return False


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name))
    return [word for word in re.split(r"[^A-Z0-9]+", spaced.upper()) if word]


def sensitive_keys(mapping: Mapping[str, object]) -> frozenset[str]:
    """The keys of ``mapping`` whose names mark them sensitive (:func:`is_sensitive_name`)."""
    return frozenset(key for key in mapping if is_sensitive_name(key))


def secrets_in(mapping: Mapping[str, object]) -> list[str]:
    """Every value held under a sensitive name, at any depth (``{"db": {"password": ...}}``), as strings.

    Everything below a sensitive key counts; booleans and nulls never do. Feed the result to :func:`redact`.
    """
    found: list[str] = []
    for key, value in mapping.items():
        if is_sensitive_name(str(key)):
            found.extend(_strings(value))
        else:
            found.extend(_nested_secrets(value))
    return found


def _nested_secrets(value: object) -> list[str]:
    if isinstance(value, Mapping):
        return secrets_in(value)
    if isinstance(value, list | tuple):
        return [secret for item in value for secret in _nested_secrets(item)]
    return []


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return [str(value)]
