"""Real text found on this machine, cut into page-sized chunks for the embedded recall corpora.

Used by `tasks.recall.corpus` so that the held-out set (and the web corpus) are not only generated
from templates. Code-related by construction: the Python language reference (`pydoc_data.topics`),
docstrings of standard-library functions and classes (mostly prose about an API, few code lines),
Unix manual pages (`/usr/share/man/man1`, roff markup removed) and release notes of installed
software (`/usr/share/doc/*/NEWS*`). Not code-related by construction: licence texts
(`/usr/share/common-licenses` and the licence files of installed distributions; legal prose that
says "software", "source code" and "program" a lot). Every source is split in two halves by a
stable order (`part` 0 or 1) so the web corpus and the held-out set never share a document. A source
missing on a machine gives no pages.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata as md
import inspect
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

MAN_DIR = Path("/usr/share/man/man1")
DOC_DIR = Path("/usr/share/doc")
LICENSE_DIR = Path("/usr/share/common-licenses")


def chunks(text: str, min_chars: int = 300, max_chars: int = 2500) -> Iterator[str]:
    """Paragraph-aligned chunks of `text` between `min_chars` and `max_chars` characters."""
    chunk = ""
    for para in re.split(r"\n\s*\n", text.strip()):
        chunk = f"{chunk}\n\n{para}" if chunk else para
        if len(chunk) >= min_chars:
            yield chunk[:max_chars]
            chunk = ""


def python_reference(part: int) -> list[tuple[str, str]]:
    """(topic, chunk) of the Python language reference topics shipped with the interpreter."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return []
    return [(name, c) for name in sorted(topics)[part::2] for c in chunks(topics[name])]


def docstrings(modules: list[str], min_chars: int = 300) -> list[tuple[str, str]]:
    """(qualified name, docstring) of public top-level functions and classes of standard-library modules."""
    out = []
    for name in modules:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = __import__(name, fromlist=["_"])
        except ImportError:
            continue
        for attr, obj in sorted(vars(module).items()):
            if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            doc = inspect.getdoc(obj) or ""
            if len(doc) >= min_chars:
                out.append((f"{name}.{attr}", doc[:2500]))
    return out


_ROFF_TEXT_MACROS = {"B", "I", "BR", "RB", "IR", "RI", "BI", "IB", "SM", "SB", "SH", "SS", "IP", "TP", "UR", "MT"}


def roff_to_text(source: str) -> str:
    """Readable text of a man page: requests dropped (text-carrying macros keep their words), escapes resolved."""
    lines = []
    for line in source.splitlines():
        if line.startswith((".", "'")):
            macro, _, args = line[1:].strip().partition(" ")
            if macro in ("SH", "SS", "PP", "LP", "P", "sp", "TP"):
                lines.append("")
            if macro not in _ROFF_TEXT_MACROS or not args:
                continue
            line = " ".join(a.strip('"') for a in args.split())
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", text)
    text = re.sub(r"\\\((..)", lambda m: {"em": "-", "en": "-", "bu": "*", "aq": "'", "dq": '"', "lq": '"',
                                          "rq": '"', "co": "(c)"}.get(m.group(1), ""), text)
    text = re.sub(r"\\\[[^\]]*\]", "", text)
    text = text.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "").replace("\\ ", " ")
    text = re.sub(r"\\[,/|^%]", "", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def man_pages(part: int, limit: int) -> list[tuple[str, str]]:
    """(command, chunk) of section-1 manual pages: every other page by name, at most `limit` pages."""
    if not MAN_DIR.is_dir():
        return []
    out = []
    for path in sorted(MAN_DIR.glob("*.1*.gz"))[part::2]:
        try:
            text = roff_to_text(gzip.decompress(path.read_bytes()).decode("utf-8", "replace"))
        except (OSError, EOFError):
            continue
        if text.startswith(".so") or len(text) < 600:
            continue  # links to other pages, stubs
        out.extend((path.name.split(".")[0], c) for c in list(chunks(text, 400))[:2])
        if len({name for name, _ in out}) >= limit:
            break
    return out


def release_notes(part: int) -> list[tuple[str, str]]:
    """(package, chunk) of upstream NEWS files of installed Debian packages (one copy of each text)."""
    if not DOC_DIR.is_dir():
        return []
    seen, out = set(), []
    for path in sorted(DOC_DIR.glob("*/NEWS*"))[part::2]:
        try:
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        except (OSError, EOFError):
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        out.extend((path.parent.name, c) for c in list(chunks(data.decode("utf-8", "replace"), 400))[:4])
    return out


def licence_texts(part: int) -> list[tuple[str, str]]:
    """(licence name, chunk) of distinct licence texts: the system's common licences and the licence
    files of installed Python distributions (one copy of each text, ignoring whitespace and copyright
    lines), at most three chunks of each."""
    files: list[tuple[str, str]] = []
    if LICENSE_DIR.is_dir():
        files += [(p.name, p.read_text("utf-8", "replace")) for p in sorted(LICENSE_DIR.iterdir()) if p.is_file()]
    for dist in sorted(md.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
        for file in dist.files or []:
            if re.search(r"(licen[cs]e|copying)[^/]*$", str(file), re.I) and "dist-info" in str(file):
                try:
                    files.append((dist.metadata["Name"], file.locate().read_text("utf-8", "replace")))
                except (OSError, UnicodeDecodeError):
                    pass
    seen, distinct = set(), []
    for name, text in files:
        body = "".join(line for line in text.lower().splitlines() if "copyright" not in line)
        key = hashlib.sha256(" ".join(body.split()).encode()).hexdigest()  # same licence, other holder
        if key not in seen and len(text) >= 300:
            seen.add(key)
            distinct.append((name, text))
    return [(name, c) for name, text in distinct[part::2] for c in list(chunks(text))[:3]]
