"""Domains and URL patterns: grouping recalled pages and the hand-annotated URL rules (spec §5 steps 4-5).

A page's domain is the host of its URL without a leading `www.` (the paper's "base URL", e.g.
stackoverflow.com). A domain is code-related when more than `domain_share` of its pages were recalled.
URL patterns use Table 14's syntax: `%` matches any run of characters, matched against the URL
without its scheme, case-insensitively.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit


def domain_of(url: str) -> str:
    """Host of `url`, lower-cased, without `www.` and port; '' when there is none."""
    target = url if "//" in url else f"//{url}"
    host = (urlsplit(target).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def _strip_scheme(url: str) -> str:
    return re.sub(r"^[a-z][a-z0-9+.-]*://", "", url.strip(), flags=re.I)


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in pattern.lower().split("%")]
    return re.compile("^" + ".*".join(parts) + "$", re.S)


def matches_any(url: str, patterns: tuple[str, ...]) -> bool:
    """True when `url` (scheme dropped; `www.` optional) matches one of the `%`-wildcard patterns."""
    bare = _strip_scheme(url).lower()
    variants = (bare, bare[4:]) if bare.startswith("www.") else (bare,)
    return any(_compile(p).match(v) for p in patterns for v in variants)


@dataclass(frozen=True)
class DomainStats:
    domain: str
    num_pages: int
    num_recalled: int

    @property
    def share(self) -> float:
        return self.num_recalled / self.num_pages if self.num_pages else 0.0


def domain_stats(domains: list[str], recalled: list[bool]) -> dict[str, DomainStats]:
    """Pages and recalled pages per domain."""
    pages, hits = Counter(domains), Counter(d for d, r in zip(domains, recalled) if r)
    return {d: DomainStats(d, n, hits[d]) for d, n in pages.items()}


def code_domains(stats: dict[str, DomainStats], share: float, min_pages: int) -> list[str]:
    """Domains where more than `share` of at least `min_pages` pages were recalled, sorted."""
    return sorted(d for d, s in stats.items() if d and s.num_pages >= min_pages and s.share > share)
