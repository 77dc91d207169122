"""Language routing: a file path -> (program language, doc type), from the released maps.

The maps are ports of `opc_data_filtering/artifacts/*.py` kept as JSON under `tasks/clean/data/`
(their source is noted inside each file). The filename map wins over the extension map; a file no
map knows is `unknown`, a language on the released exclusion list is `excluded` (both dropped).
As released (`utils/preprocessing.py::get_program_lang`), the extension is the last one, looked up as written:
`NuGet.Config` is unknown and `test.sh.in` is `in` (cmake); the map's compound keys (`sh.in`) never match there.

Recalled web pages (`source` "web", written by tasks/recall: `path` is the page's URL, not a file name) are not
routed by their URL's extension: they are natural-language text (language `web`, doc type `text`), so the
released text rules (en/zh) apply to them, as they apply to the paper's code-related web data (spec §5).
"""

from __future__ import annotations

import json
import posixpath
from functools import lru_cache
from pathlib import Path, PurePosixPath

DATA_DIR = Path(__file__).parent / "data"
UNKNOWN = "unknown"
EXCLUDED = "excluded"
WEB_SOURCE = "web"
"""`source` of the recalled web rows (tasks/recall)."""
WEB_LANG = "web"
"""Program language given to a recalled web page (its doc type is `text`)."""

# The released configs with language-specific thresholds (spec §3.3 routing).
CONFIG_LANGS = frozenset({"cpp", "csharp", "c", "go", "html", "java", "javascript", "python", "shell", "sql"})


@lru_cache(maxsize=None)
def _maps() -> tuple[dict[str, str], dict[str, str], dict[str, str], frozenset[str]]:
    ext = json.loads((DATA_DIR / "extension_to_program.json").read_text())["map"]
    names = json.loads((DATA_DIR / "filename_to_program.json").read_text())["map"]
    types = json.loads((DATA_DIR / "program_to_type.json").read_text())
    kind = {lang: "data" for lang in types["data"]} | {lang: "text" for lang in types["text"]}
    return ext, names, kind, frozenset(types["excluded"])


def program_lang(path: str | None) -> str:
    """Program language of a path: exact file name first, then the last extension, case kept (as released)."""
    if not path:
        return UNKNOWN
    ext_map, name_map, _, _ = _maps()
    name = PurePosixPath(path.replace("\\", "/")).name
    if name in name_map:
        return name_map[name]
    ext = posixpath.splitext(name)[1][1:]  # the released notebook's `os.path.splitext(file)[1][1:]`
    return ext_map.get(ext, UNKNOWN)


def doc_type(lang: str) -> str:
    """code / data / text for a program language; `excluded` or `unknown` when it must be dropped."""
    if lang == UNKNOWN:
        return UNKNOWN
    _, _, kind, excluded = _maps()
    if lang in excluded:
        return EXCLUDED
    return kind.get(lang, "code")


def route(path: str | None, source: str | None = None) -> tuple[str, str]:
    """(program language, doc type) of a row: a recalled web page is `web` text whatever its URL ends with,
    a file is routed by its path."""
    if source == WEB_SOURCE:
        return WEB_LANG, "text"
    lang = program_lang(path)
    return lang, doc_type(lang)


def rule_config(lang: str, kind: str, natural_lang: str) -> str:
    """Which rule config applies: en/zh for text, the language's own, else `data` or `others`."""
    if kind == "text":
        return "zh" if natural_lang == "zh" else "en"
    if lang in CONFIG_LANGS:
        return lang
    return "data" if kind == "data" else "others"
