"""Transformations applied before filtering (paper §2.1.1): rewrite, don't drop.

- Copyright removal: a leading comment block (after an optional shebang / encoding line) that
  mentions a copyright or licence notice is deleted. The paper gives no detector (spec §3.1 NOT
  FOUND); ours looks at the first comment block only, in the comment syntaxes of the common
  languages (`#`, `//`, `--`, `;`, `/* */`, `<!-- -->`, Python triple-quoted docstrings).
- PII redaction: e-mail addresses, IPv4/IPv6 addresses, secret keys (well-known key formats, private
  key blocks, long random tokens assigned to key/secret/token names) and passwords (values assigned to
  password-like names, passwords in URLs) are replaced by `<EMAIL>`, `<IP_ADDRESS>`, `<KEY>`,
  `<PASSWORD>`. Placeholders follow the spec's reading of the paper; the regexes are ours (NOT FOUND
  in the release). Private and documentation addresses (127.0.0.1, 0.0.0.0, 10/8, 192.168/16,
  version-number look-alikes) and example e-mail domains are kept, because they carry no PII.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter

_COPYRIGHT = re.compile(r"copyright|\(c\)\s*\d{4}|©|all rights reserved|licen[cs]ed under|spdx-license-identifier", re.I)
_PREAMBLE = re.compile(r"\A(?:#![^\n]*\n|#[^\n]*coding[:=][^\n]*\n|<\?xml[^\n]*\n)*")
_LEADING_COMMENT = re.compile(
    r"\A[ \t]*(?:"
    r"/\*.*?\*/[ \t]*\n?"  # C block
    r"|<!--.*?-->[ \t]*\n?"  # markup
    r'|(?:"""|\'\'\')(?:.*?)(?:"""|\'\'\')[ \t]*\n?'  # Python module docstring
    r"|(?:[ \t]*(?://|#|--|;;?|%)[^\n]*(?:\n|\Z))+"  # a run of line comments
    r")",
    re.S,
)


def remove_copyright(text: str) -> tuple[str, bool]:
    """Drop the first comment block when it carries a copyright notice; returns (text, removed)."""
    preamble = _PREAMBLE.match(text).group(0)
    rest = text[len(preamble):]
    lead = rest[: len(rest) - len(rest.lstrip("\n"))]
    body = rest[len(lead):]
    match = _LEADING_COMMENT.match(body)
    if not match or not _COPYRIGHT.search(match.group(0)):
        return text, False
    return preamble + body[match.end():].lstrip("\n"), True


_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b")
_EXAMPLE_EMAIL = re.compile(r"@(?:example\.(?:com|org|net)|localhost|test\.com|domain\.com|email\.com)$", re.I)
_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}(?::|[0-9A-Fa-f]{1,4})(?![\w:])|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:?){1,6}(?![\w:])")
_MAYBE_IP = re.compile(r"\d\.\d{1,3}\.\d")
_KEY_FORMATS = re.compile(
    r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )*PRIVATE KEY-----"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b"  # GitHub tokens
    r"|\bgithub_pat_[A-Za-z0-9_]{40,}\b"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}\b"  # Slack
    r"|\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{20,}\b"  # OpenAI / Stripe style
    r"|\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b"
    r"|\bAIza[0-9A-Za-z_-]{35}\b"  # Google API key
    r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"  # JWT
)
_ASSIGNED_SECRET = re.compile(
    r"(?i)((?:api[_-]?key|secret|token|access[_-]?key|private[_-]?key|auth[_-]?key)\w*['\"]?\s*(?:=|:|=>|:=)\s*[rbuf]?['\"])([A-Za-z0-9+/_\-.=]{16,})(['\"])"
)
_ASSIGNED_PASSWORD = re.compile(
    r"(?i)((?:passw(?:or)?d|passwd|pwd|pass_?phrase|db_?pass)\w*['\"]?\s*(?:=|:|=>|:=)\s*[rbuf]?(['\"]))([^'\"\s]{4,})(\2)"
)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)([^@\s/]{3,})(@)")
_PLACEHOLDER_VALUE = re.compile(r"^(?:<[A-Z_]+>|\$\{?\w+\}?|%\(?\w*\)?s?|\{\w*\}|x+|\*+|changeme|password|secret|your[_-]?\w*|none|null|true|false|\.\.\.)$", re.I)


def _is_public_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not (ip.is_private or ip.is_loopback or ip.is_unspecified or ip.is_reserved or ip.is_multicast or ip.is_link_local)


def _sub_group(pattern: re.Pattern, placeholder: str, value_group: int, text: str, counts: Counter, kind: str) -> str:
    def repl(m: re.Match) -> str:
        value = m.group(value_group)
        if _PLACEHOLDER_VALUE.match(value):
            return m.group(0)
        counts[kind] += 1
        start, end = m.span(value_group)
        return m.group(0)[: start - m.start()] + placeholder + m.group(0)[end - m.start():]

    return pattern.sub(repl, text)


def redact_pii(text: str) -> tuple[str, Counter]:
    """Replace PII with placeholders; returns the new text and counts per kind (email, ip_address, key, password)."""
    counts: Counter = Counter()

    def keyfmt(m: re.Match) -> str:
        counts["key"] += 1
        return "<KEY>"

    text = _KEY_FORMATS.sub(keyfmt, text)
    text = _sub_group(_ASSIGNED_SECRET, "<KEY>", 2, text, counts, "key")
    text = _sub_group(_ASSIGNED_PASSWORD, "<PASSWORD>", 3, text, counts, "password")
    text = _sub_group(_URL_PASSWORD, "<PASSWORD>", 2, text, counts, "password")

    def email(m: re.Match) -> str:
        if _EXAMPLE_EMAIL.search(m.group(0)):
            return m.group(0)
        counts["email"] += 1
        return "<EMAIL>"

    if "@" in text:
        text = _EMAIL.sub(email, text)

    def ip(m: re.Match) -> str:
        if not _is_public_ip(m.group(0)):
            return m.group(0)
        counts["ip_address"] += 1
        return "<IP_ADDRESS>"

    if _MAYBE_IP.search(text):
        text = _IPV4.sub(ip, text)
    if ":" in text:
        text = _IPV6.sub(ip, text)
    return text, counts
