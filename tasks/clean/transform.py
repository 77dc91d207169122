"""Transformations applied before filtering (paper §2.1.1): rewrite, don't drop.

- Copyright removal: a leading comment block (after an optional shebang / encoding line) that
  mentions a copyright or licence notice is deleted. The paper gives no detector (spec §3.1 NOT
  FOUND); ours looks at the first comment block only, in the comment syntaxes of the common
  languages (`#`, `//`, `--`, `;`, `/* */`, `<!-- -->`, Python triple-quoted docstrings).
- PII redaction (`find_pii` -> spans, `redact_pii` -> text): e-mail addresses, IPv4/IPv6 addresses,
  secret keys and passwords become `<EMAIL>`, `<IP_ADDRESS>`, `<KEY>`, `<PASSWORD>` (placeholders after
  the spec's reading of the paper; the detectors are ours, NOT FOUND in the release).
  Keys: well-known formats (AWS, GitHub, GitLab, npm, PyPI, Slack tokens and webhooks, Google API and
  OAuth, Stripe secret, OpenAI/Anthropic, SendGrid, JWT), private-key blocks, `Bearer` tokens and
  random-looking values assigned to secret names (`*_secret`, `*token`, `api_key`, ...).
  Passwords: values assigned to password names (`=`, `:`, typed `: str =`, `put("password", v)`,
  `setPassword(v)`, SQL `IDENTIFIED BY` / `PASSWORD '...'`, `Password=...;` in connection strings) and
  the password of `scheme://user:password@host`.
  Decisions (each a case of the labelled set tests/clean/data/pii_cases.jsonl, measured by
  benchmarks/pii.py): kept as not personal are private, loopback, link-local, reserved and
  documentation addresses, well-known public DNS resolvers, dotted quads in a version context
  (`version`, `==`, `v1.2.3.4`, `Section 4.2.3.1`), with only one-digit parts, or inside a run of
  numbers (SVG paths); e-mails at example/test/invalid/localhost domains, `git@host`, retina image
  names (`logo@2x.png`) and URL user-info; hashes, UUIDs and public keys/certificates (no secret
  name); Stripe publishable keys; placeholder values (`changeme`, `<...>`, `${VAR}`, `your-...`,
  `xxxx`, `***`, words like "new-passphrase") and code (`password = get_password()`, `self.token`).
  Redacted: `noreply@company.com` (a real domain) and GitHub noreply addresses (they name a user).
  Each detector runs only where a cheap literal test finds a candidate, and on very long
  (minified) lines only around candidates, so redaction stays linear in the text.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections import Counter
from typing import NamedTuple

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


class Pii(NamedTuple):
    start: int
    end: int
    kind: str
    """email, ip_address, key or password."""


PLACEHOLDERS = {"email": "<EMAIL>", "ip_address": "<IP_ADDRESS>", "key": "<KEY>", "password": "<PASSWORD>"}

# Well-known key formats, each run only when its literal prefix occurs in the text (a `str.__contains__`
# test, so files without any cost nothing). The character before a match must not be alphanumeric.
_KEY_FORMATS: list[tuple[tuple[str, ...], re.Pattern]] = [
    (("AKIA", "ASIA"), re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Za-z])")),  # AWS access key id
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), re.compile(r"gh[pousr]_[A-Za-z0-9]{36,}")),  # GitHub
    (("github_pat_",), re.compile(r"github_pat_[A-Za-z0-9_]{40,}")),
    (("glpat-",), re.compile(r"glpat-[A-Za-z0-9_-]{20,}")),  # GitLab
    (("npm_",), re.compile(r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])")),
    (("pypi-AgE",), re.compile(r"pypi-AgE[A-Za-z0-9_-]{50,}")),
    (("xox",), re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}")),  # Slack tokens
    (("hooks.slack.com",), re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}")),
    (("AIza",), re.compile(r"AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])")),  # Google API key
    (("GOCSPX-",), re.compile(r"GOCSPX-[A-Za-z0-9_-]{20,}")),  # Google OAuth client secret
    (("sk_", "rk_"), re.compile(r"[rs]k_(?:live|test)_[A-Za-z0-9]{16,}")),  # Stripe secret / restricted
    (("sk-",), re.compile(r"sk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{20,}")),  # OpenAI / Anthropic
    (("SG.",), re.compile(r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}")),  # SendGrid
    (("eyJ",), re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),  # JWT
]
_PRIVATE_KEY = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----[\s\S]*?-----END \1-----")
_BEARER = re.compile(r"\bBearer\s+([A-Za-z0-9._~+/-]{20,}=*)")

# Assignments: a name that ends in a password / secret word, an assignment (=, :, =>, :=, a typed
# `: T =`, or a quoted pair `"name", "value"`), then a quoted or bare value. Only the lines that
# contain one of the words are searched.
_CANDIDATE = re.compile(r"(?i)pass|pwd|secret|token|key|credential|identified")
_CANDIDATE_LOWER = re.compile(r"pass|pwd|secret|token|key|credential|identified")
_PASSWORD_NAME = r"(?:(?i:passw(?:or)?d|passphrase)|(?<![A-Za-z])(?i:pass|pwd)|(?<=[a-z])(?:Pass|Pwd))"
_SECRET_NAME = (r"(?:secret(?:[_-]?key(?:[_-]?base)?)?|token|credentials?|apikey"
                r"|(?:api|access|private|auth|signing|encryption|master|app|client)[_-]?key)")
_ASSIGN = (r"(?:\[\])?(?:(?P<nq>['\"])\]?|\]?)"
           r"(?:\s*:\s*[&\w\[\], .|<>]+?\s*=(?!=)|\s*(?:=>|:=|=(?!=))|(?(nq)\s*|):(?!:))\s*")
_PAIR = r"(?P<pq>['\"])\s*,\s*[rbuf]{0,2}(?P<q>['\"])(?P<quoted>[^'\"\s]+)(?P=q)\s*\)"  # put("password", "v")
_VALUE = (r"(?:[rbuf]{0,2}(?P<q>['\"`])(?P<quoted>[^'\"`\s]+)(?P=q)"
          r"|(?P<bare>[^\s'\"`;&,()\[\]{}<>$%][^\s'\"`;&,()\[\]{}<>]*+)(?=\s*(?:$|[;&,'\"`)\]}#<>|-]|\w+=)))")
_ASSIGNED_PASSWORD = re.compile(rf"{_PASSWORD_NAME}(?![A-Za-z0-9_])(?:{_ASSIGN}{_VALUE})", re.M)
_ASSIGNED_SECRET = re.compile(rf"(?i:{_SECRET_NAME})(?![A-Za-z0-9_])(?:{_ASSIGN}{_VALUE})", re.M)
_PAIR_PASSWORD = re.compile(rf"{_PASSWORD_NAME}{_PAIR}")
_PAIR_SECRET = re.compile(rf"(?i:{_SECRET_NAME}){_PAIR}")
_SETTER_PASSWORD = re.compile(r"(?i:set_?password)\(\s*(?P<q>['\"])(?P<quoted>[^'\"\s]+)(?P=q)\s*\)")
_SQL_PASSWORD = re.compile(r"(?i:identified\s+by|\bpassword)\s+'(?P<quoted>[^'\s]+)'")
_URL_CREDENTIALS = re.compile(r"[^\s:/@'\"<>]{0,64}:([^\s@/'\"]{3,64})@")  # matched right after "://"

_PLACEHOLDER_VALUE = re.compile(
    r"^(?:<[\w .-]*>|\$\{?\w+\}?|%\(?\w*\)?s?|\{+[\w .]*\}+|x+|\*+|\.+|your[_-].*|my[_-].*|.*[_-]here"
    r"|[^A-Za-z0-9]*|none|null|nil|true|false|undefined|todo|redacted)$", re.I)
# Values made only of these words (and digits) are examples, not secrets: "new-passphrase", "password123".
_EXAMPLE_WORDS = frozenset(
    "new old current original default dummy fake sample test example some secret password passwd passphrase pass pwd"
    " token key user username admin changeme change me text hidden value foo bar".split())
_NOT_SECRET_NAME_PREFIX = re.compile(r"(?i)(?:public[_-]?(?:key)?|page|csrf|next)[_-]?$")
_WORDISH = re.compile(r"[A-Za-z][a-z]{3,}")
_CODE_NAME = re.compile(r"[A-Za-z_]+|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")  # a variable or attribute, not a value

_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])")
_EMAIL_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_KEPT_EMAIL_DOMAINS = re.compile(
    r"(?:^|\.)(?:example\.(?:com|org|net|edu)|example|test|invalid|localhost|local|test\.com|domain\.com|email\.com)$", re.I)
_NOT_A_TLD = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "css", "js", "json", "html", "txt"})
_KEPT_EMAIL_USERS = frozenset({"git"})

# Both start with a character class (the engine skips to candidates in C); the character before a
# match is checked in Python (not a word character, dot, minus / colon), which a leading lookbehind
# would do several times slower.
_IPV4 = re.compile(r"\d{1,3}+\.\d{1,3}+\.\d{1,3}+\.\d{1,3}+(?!\w|\.\w)")
_IPV6 = re.compile(r"[0-9A-Fa-f:][0-9A-Fa-f.]*+:[0-9A-Fa-f.]*+:[0-9A-Fa-f:.]*+(?![\w:.])")
_VERSION_CONTEXT = re.compile(r"(?i)(?:(?:(?:version|release|build|firmware)\w*|\bver|\bsince|\bv|section|chapter|§)\W{0,20}|[=<>~!]=\s*)$")
_NUMBER_BEFORE = re.compile(r"(?:^|\s)[-+]?[\d.,-]*\d[\d.,-]*\s+$")  # "6.75 6.75.75.75": SVG paths, number lists
# Public resolvers are infrastructure, not personal data (as in BigCode's PII pipeline).
_KEPT_IPS = frozenset({"8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112", "208.67.222.222",
                       "208.67.220.220", "2001:4860:4860::8888", "2001:4860:4860::8844", "2606:4700:4700::1111",
                       "2606:4700:4700::1001"})


def _is_public_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    if text in _KEPT_IPS:
        return False
    return ip.is_global and not (ip.is_reserved or ip.is_multicast or ip.is_link_local or ip.is_loopback)


def _is_placeholder(value: str) -> bool:
    if _PLACEHOLDER_VALUE.match(value) or "..." in value:
        return True
    return all(part.rstrip("0123456789") in _EXAMPLE_WORDS for part in re.split(r"[-_.\s]+", value.lower()) if part)


def _looks_secret(value: str) -> bool:
    """A random-looking token: long enough, letters with digits (or mixed case), not words, not a path or URL."""
    if len(value) < 12 or _is_placeholder(value) or "://" in value or value.startswith(("/", "./", "~")):
        return False
    if sum(map(len, _WORDISH.findall(value))) > 0.6 * len(value):
        return False
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    mixed_case = any(c.isupper() for c in value) and any(c.islower() for c in value)
    return has_alpha and (has_digit or (mixed_case and len(value) >= 20))


def _plausible_password(value: str) -> bool:
    return len(value) >= 4 and not _is_placeholder(value)


def _assigned_value(m: re.Match) -> tuple[int, int, str, bool]:
    if m.group("quoted") is not None:
        return m.start("quoted"), m.end("quoted"), m.group("quoted"), True
    return m.start("bare"), m.end("bare"), m.group("bare"), False


def _candidates(text: str):
    if text.isascii():  # lower() keeps offsets; a case-sensitive scan is several times faster
        return _CANDIDATE_LOWER.finditer(text.lower())
    return _CANDIDATE.finditer(text)


def _assignments(text: str, found: list[tuple[int, Pii]]) -> None:
    """Password and secret assignments. Only lines holding a candidate word are searched; on a very
    long (minified) line the patterns are tried just before each candidate word, so work stays linear."""
    searched_to = -1
    for hit in _candidates(text):
        if hit.start() < searched_to:
            continue
        newline_before = text.rfind("\n", max(0, hit.start() - _LONG_LINE), hit.start())
        newline_after = text.find("\n", hit.end(), hit.end() + _LONG_LINE)
        start = newline_before + 1
        end = len(text) if newline_after < 0 else newline_after
        if (newline_before >= 0 or hit.start() <= _LONG_LINE) and (newline_after >= 0 or len(text) - hit.end() <= _LONG_LINE):
            searched_to = end
            matches = [m for pattern in _ASSIGNMENT_PATTERNS for m in pattern.finditer(text, start, end)]
        else:  # a name starts at most 12 characters before its candidate word ("encryption_key")
            end = min(end, hit.end() + 600)
            matches = [m for p in range(max(start, hit.start() - 12), hit.start() + 1) for pattern in _ASSIGNMENT_PATTERNS
                       if (m := pattern.match(text, p, end))]
        for m in matches:
            v_start, v_end, value, quoted = _assigned_value(m)
            if not quoted and _CODE_NAME.fullmatch(value):
                continue
            if m.re in _PASSWORD_PATTERNS:
                if _plausible_password(value):
                    found.append((3, Pii(v_start, v_end, "password")))
            elif _looks_secret(value) and not _NOT_SECRET_NAME_PREFIX.search(text, max(0, m.start() - 12), m.start()):
                found.append((4, Pii(v_start, v_end, "key")))


_LONG_LINE = 2048
_PASSWORD_PATTERNS = (_ASSIGNED_PASSWORD, _PAIR_PASSWORD, _SETTER_PASSWORD, _SQL_PASSWORD)
_ASSIGNMENT_PATTERNS = (*_PASSWORD_PATTERNS, _ASSIGNED_SECRET, _PAIR_SECRET)


def _emails(text: str, found: list[tuple[int, Pii]]) -> None:
    at = text.find("@")
    while at >= 0:
        start = at
        while start > 0 and at - start < 64 and text[start - 1] in _EMAIL_LOCAL_CHARS:
            start -= 1
        local = text[start:at]
        m = _EMAIL_DOMAIN.match(text, at + 1)
        scheme = text.rfind("://", max(0, start - 64), start)
        url_userinfo = scheme >= 0 and not any(c in text[scheme:start] for c in " \t\n'\"<>")
        if m and local.strip(".+-%") and not url_userinfo and (start == 0 or text[start - 1] not in _EMAIL_LOCAL_CHARS):
            domain = m.group(0)
            if not (_KEPT_EMAIL_DOMAINS.search(domain) or domain.rsplit(".", 1)[-1].lower() in _NOT_A_TLD
                    or local.lower() in _KEPT_EMAIL_USERS):
                found.append((5, Pii(start + len(local) - len(local.lstrip(".")), m.end(), "email")))
        at = text.find("@", at + 1)


def _ip_addresses(text: str, found: list[tuple[int, Pii]]) -> None:
    if "." in text:
        for m in _IPV4.finditer(text):
            if m.start() and (text[m.start() - 1] in ".-_" or text[m.start() - 1].isalnum()):
                continue
            context_start = max(0, m.start() - 40)
            context_start = text.rfind("\n", context_start, m.start()) + 1 or context_start
            if (_is_public_ip(m.group(0)) and max(map(len, m.group(0).split("."))) > 1
                    and not _VERSION_CONTEXT.search(text, context_start, m.start())
                    and not _NUMBER_BEFORE.search(text, context_start, m.start())):
                found.append((6, Pii(m.start(), m.end(), "ip_address")))
    if "::" in text or text.count(":") >= 7:
        for m in _IPV6.finditer(text):
            if m.start() and (text[m.start() - 1] in ".:_" or text[m.start() - 1].isalnum()):
                continue
            if m.group(0).count(":") >= 2 and _is_public_ip(m.group(0)):
                found.append((6, Pii(m.start(), m.end(), "ip_address")))


def find_pii(text: str) -> list[Pii]:
    """PII spans of a text, sorted and non-overlapping (on overlap: key formats, then credentials, then the rest)."""
    found: list[tuple[int, Pii]] = []
    if "PRIVATE KEY" in text:
        found += [(0, Pii(m.start(), m.end(), "key")) for m in _PRIVATE_KEY.finditer(text)]
    for literals, pattern in _KEY_FORMATS:
        if any(lit in text for lit in literals):
            found += [(1, Pii(m.start(), m.end(), "key")) for m in pattern.finditer(text)
                      if m.start() == 0 or not text[m.start() - 1].isalnum()]
    if "Bearer" in text:
        found += [(2, Pii(m.start(1), m.end(1), "key")) for m in _BEARER.finditer(text) if _looks_secret(m.group(1))]
    scheme = text.find("://")
    while scheme >= 0:
        m = _URL_CREDENTIALS.match(text, scheme + 3)
        if m and _plausible_password(m.group(1)):
            found.append((2, Pii(m.start(1), m.end(1), "password")))
        scheme = text.find("://", scheme + 3)
    _assignments(text, found)
    if "@" in text:
        _emails(text, found)
    _ip_addresses(text, found)
    starts: list[int] = []
    taken: list[Pii] = []  # sorted by start, non-overlapping
    for _, span in sorted(found, key=lambda item: (item[0], item[1].start)):
        i = bisect.bisect(starts, span.start)
        if (i == 0 or taken[i - 1].end <= span.start) and (i == len(taken) or span.end <= taken[i].start):
            starts.insert(i, span.start)
            taken.insert(i, span)
    return taken


def redact_pii(text: str) -> tuple[str, Counter]:
    """Replace PII with placeholders; returns the new text and counts per kind (email, ip_address, key, password)."""
    spans = find_pii(text)
    if not spans:
        return text, Counter()
    pieces, last = [], 0
    for span in spans:
        pieces += [text[last:span.start], PLACEHOLDERS[span.kind]]
        last = span.end
    pieces.append(text[last:])
    return "".join(pieces), Counter(span.kind for span in spans)
