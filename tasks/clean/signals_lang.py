"""Language-specific signals (`quality_signals/code_specific/*.py`, `utils/code/*_utils.py`), re-implemented.

Python uses the standard `ast`; JavaScript uses `esprima` (the released parser, pure Python) for
`cate_ast` and regexes for the rest; HTML uses the standard library `html.parser` (the parser
BeautifulSoup's `html.parser` backend wraps; bs4 is not installed). C, C++, C#, Go and Java use
line regexes as the release does. Substring counts (`pass`, `import`, `print`) reproduce the
released false positives unless `fix_substring_matching` is set.
"""

from __future__ import annotations

import ast
import re
from html.parser import HTMLParser

from tasks.clean.signals import Doc, _ratio, signal

# ---- Python ----


def _python_tree(doc: Doc) -> ast.AST | None:
    if "_py_tree" not in doc.__dict__:
        try:
            doc.__dict__["_py_tree"] = ast.parse(doc.text)
        except (SyntaxError, ValueError):
            doc.__dict__["_py_tree"] = None
    return doc.__dict__["_py_tree"]


_STATEMENT_LISTS = ("body", "orelse", "finalbody", "handlers", "cases")
_FUNCTION_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef)


def _summary(doc: Doc) -> tuple[list[ast.AST], list[ast.AST], int]:
    """(function defs, class defs, import statements) of the tree, from one walk over the statements only:
    definitions and imports are statements, so expressions (most of the nodes) need not be visited."""
    summary = doc.__dict__.get("_py_summary")
    if summary is None:
        functions, classes, imports = [], [], 0
        stack = list(doc.__dict__["_py_tree"].body)
        while stack:
            node = stack.pop()
            if isinstance(node, _FUNCTION_TYPES):
                functions.append(node)
            elif isinstance(node, ast.ClassDef):
                classes.append(node)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                imports += 1
            for name in _STATEMENT_LISTS:
                children = getattr(node, name, None)
                if children:
                    stack.extend(children)
        summary = doc.__dict__["_py_summary"] = (functions, classes, imports)
    return summary


def _functions(doc: Doc) -> list[ast.AST]:
    return _summary(doc)[0]


@signal("qsc_codepython_cate_ast")
def python_cate_ast(doc: Doc) -> float:
    return float(_python_tree(doc) is not None)


@signal("qsc_codepython_frac_lines_func_ratio")
def python_func_ratio(doc: Doc) -> float | None:
    tree = _python_tree(doc)
    return None if tree is None else _ratio(len(_functions(doc)), len(doc.code_lines))


@signal("qsc_codepython_cate_var_zero")
def python_var_zero(doc: Doc) -> float | None:
    tree = _python_tree(doc)
    if tree is None:
        return None
    for node in ast.walk(tree):  # lazily: stops at the first assigned name or argument
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            return 0.0
        if isinstance(node, ast.arg):
            return 0.0
    return 1.0


@signal("qsc_codepython_frac_lines_pass")
def python_pass(doc: Doc) -> float | None:
    return _ratio(doc.count_lines("pass"), len(doc.code_lines))


@signal("qsc_codepython_frac_lines_import")
def python_import(doc: Doc) -> float | None:
    return _ratio(doc.count_lines("import"), len(doc.code_lines))


@signal("qsc_codepython_frac_lines_print")
def python_print(doc: Doc) -> float | None:
    return _ratio(doc.count_lines("print"), len(doc.code_lines))


@signal("qsc_codepython_frac_lines_simplefunc")
def python_simplefunc(doc: Doc) -> float | None:
    tree = _python_tree(doc)
    if tree is None:
        return None
    simple = sum(1 for f in _functions(doc) if len(f.body) == 1 and isinstance(f.body[0], ast.Return))
    return _ratio(simple, len(doc.code_lines))


_RETURN_LINE = re.compile(r"^\s*return\b[^\n]*$")


@signal("qsc_codepython_score_lines_no_logic")
def python_no_logic(doc: Doc) -> float | None:
    tree = _python_tree(doc)
    if tree is None:
        return None
    functions, classes, imports = _summary(doc)
    class_assigns = sum(1 for c in classes for s in c.body if isinstance(s, (ast.Assign, ast.AnnAssign)))
    returns = sum(1 for line in doc.code_lines if _RETURN_LINE.match(line))
    return _ratio(len(functions) + imports + len(classes) + returns + class_assigns, len(doc.code_lines))


# ---- C / C++ ----

_C_FUNC = re.compile(r"^\s*(?:[\w:<>,\*&\[\]]+\s+)+[\*&]*~?[\w:]+\s*\([^;{}()]*\)\s*(?:const\s*)?(?:noexcept\s*)?\{?\s*$")
_C_MAIN = re.compile(r"\bmain\s*\([^)]*\)\s*\{")
_C_INCLUDE = re.compile(r"^\s*#\s*include\b")
_C_SIMPLE_DECL = re.compile(r"^\s*(?:const\s+|static\s+|unsigned\s+|signed\s+)*(?:int|char|float|double|long|short|bool|auto|size_t|void\s*\*|std::\w+|[A-Z]\w*)\s+\**\w+\s*(?:=\s*[^;,(]+)?;\s*$")
_SIMPLE_RETURN = re.compile(r"^\s*return\s*[\w\"'.\-]*\s*;\s*$")
_C_CLASS = re.compile(r"^\s*(?:class|struct)\s+\w+")
_C_PREPROC = re.compile(r"^\s*#\s*(?:include|define|undef|if|ifdef|ifndef|elif|else|endif|pragma|error|warning|line)\b|struct|using")
_C_HEADER = (".h", ".hpp", ".hxx", ".hh", ".h++")


def _register_c(lang: str) -> None:
    p = f"qsc_code{lang}"
    signal(f"{p}_frac_lines_func_ratio")(lambda doc: _ratio(sum(1 for l in doc.code_lines if _C_FUNC.match(l)), len(doc.code_lines)))
    signal(f"{p}_nums_lines_main")(lambda doc: float(len(_C_MAIN.findall(doc.scan.code_only))))
    signal(f"{p}_score_lines_no_logic")(
        lambda doc: _ratio(
            sum(1 for l in doc.code_lines if _C_FUNC.match(l) or _C_INCLUDE.match(l) or _C_SIMPLE_DECL.match(l) or _SIMPLE_RETURN.match(l) or _C_CLASS.match(l)),
            len(doc.code_lines),
        )
    )
    signal(f"{p}_frac_lines_preprocessor_directives")(
        lambda doc: None if doc.path.lower().endswith(_C_HEADER) else _ratio(sum(1 for l in doc.code_lines if _C_PREPROC.search(l)), len(doc.code_lines))
    )
    signal(f"{p}_frac_lines_print")(lambda doc: _ratio(doc.count_lines("printf"), len(doc.code_lines)))
    signal(f"{p}_cate_bitsstdc")(lambda doc: float("bits/stdc++.h" in doc.text[:200]))
    signal(f"{p}_frac_lines_goto")(lambda doc: _ratio(sum(1 for l in doc.code_lines if re.search(r"\bgoto\b", l)), len(doc.code_lines)))
    signal(f"{p}_cate_var_zero")(lambda doc: float(not any(_C_SIMPLE_DECL.match(l) for l in doc.code_lines)))


_register_c("c")
_register_c("cpp")

# ---- C#, Java, Go ----

_MODIFIERS = r"(?:public|private|protected|internal|static|final|abstract|virtual|override|async|sealed|synchronized|extern|unsafe|partial|new)"
_CS_JAVA_FUNC = re.compile(rf"^\s*(?:{_MODIFIERS}\s+)+[\w<>\[\],\.\s?]+\s+\w+\s*\([^;]*\)\s*(?:throws\s+[\w.,\s]+)?\{{?\s*$")
_CS_JAVA_CLASS = re.compile(r"^\s*(?:\w+\s+)*(?:class|interface|enum|record|struct)\s+\w+")
_TYPED_VAR = re.compile(r"^\s*(?:final\s+|const\s+|readonly\s+|static\s+)*(?:var|int|long|short|byte|char|float|double|bool|boolean|string|String|decimal|object|Object|[A-Z]\w*(?:<[^>]*>)?(?:\[\])?)\s+\w+\s*(?:=[^=][^;]*)?;\s*$")
_CS_USING = re.compile(r"^\s*using\s+[\w.]+\s*;")
_JAVA_IMPORT = re.compile(r"^\s*(?:import|package)\s+[\w.*]+\s*;")


def _no_logic(doc: Doc, *patterns: re.Pattern) -> float | None:
    return _ratio(sum(1 for l in doc.code_lines if any(p.match(l) for p in patterns)), len(doc.code_lines))


signal("qsc_codecsharp_frac_lines_func_ratio")(lambda doc: _ratio(sum(1 for l in doc.code_lines if _CS_JAVA_FUNC.match(l)), len(doc.code_lines)))
signal("qsc_codecsharp_score_lines_no_logic")(lambda doc: _no_logic(doc, _CS_JAVA_FUNC, _CS_USING, _TYPED_VAR, _SIMPLE_RETURN, _CS_JAVA_CLASS))
signal("qsc_codecsharp_frac_lines_print")(lambda doc: _ratio(doc.count_lines("Console.WriteLine"), len(doc.code_lines)))


def _var_zero(doc: Doc, pattern: re.Pattern) -> float:
    """C#/Go `var_zero`: no variable lines. The release compares a list to 0, so it never fires."""
    variables = [l for l in doc.code_lines if pattern.match(l)]
    if not doc.options.fix_var_zero:
        return float(variables == 0)  # reproduces the released bug
    return float(len(variables) == 0)


signal("qsc_codecsharp_cate_var_zero")(lambda doc: _var_zero(doc, _TYPED_VAR))


signal("qsc_codejava_frac_lines_func_ratio")(lambda doc: _ratio(sum(1 for l in doc.code_lines if _CS_JAVA_FUNC.match(l)), len(doc.code_lines)))
signal("qsc_codejava_score_lines_no_logic")(lambda doc: _no_logic(doc, _CS_JAVA_FUNC, _JAVA_IMPORT, _TYPED_VAR, _SIMPLE_RETURN, _CS_JAVA_CLASS))
signal("qsc_codejava_frac_lines_print")(lambda doc: _ratio(doc.count_lines("System.out.print"), len(doc.code_lines)))
_JAVA_VAR_DECL = re.compile(r"\b(?:int|long|short|byte|char|float|double|boolean|String|var|[A-Z]\w*(?:<[^<>]*>)?(?:\[\])*)\s+[a-zA-Z_$][\w$]*\s*(?:=|;|:)")
signal("qsc_codejava_cate_var_zero")(lambda doc: float(not _JAVA_VAR_DECL.search(doc.scan.code_only)))
_JAVA_DECL_NAMES = re.compile(r"\b(?:int|long|short|byte|char|float|double|boolean|String|var)\s+([a-zA-Z_$][\w$]*)\s*[=;]")
_JAVA_FUNC_NAMES = re.compile(r"\b\w+\s+(\w+)\s*\([^;{}]*\)\s*\{")
_CLASS_NAMES = re.compile(r"\bclass\s+(\w+)")


def _legal(names: list[str], pattern: str) -> float | None:
    return _ratio(sum(1 for n in names if re.match(pattern, n)), len(names))


signal("qsc_codejava_frac_words_legal_var_name")(lambda doc: _legal(_JAVA_DECL_NAMES.findall(doc.scan.code_only), r"^[a-z][a-zA-Z0-9]*$"))
signal("qsc_codejava_frac_words_legal_func_name")(lambda doc: _legal(_JAVA_FUNC_NAMES.findall(doc.scan.code_only), r"^[a-z][a-zA-Z0-9]*$"))
signal("qsc_codejava_frac_words_legal_class_name")(lambda doc: _legal(_CLASS_NAMES.findall(doc.scan.code_only), r"^[A-Z][a-zA-Z0-9]*$"))
signal("qsc_codejava_frac_words_no_modifier")(
    lambda doc: _ratio(
        sum(1 for l in doc.code_lines if _CS_JAVA_FUNC.match(l) is None and re.match(r"^\s*[\w<>\[\]]+\s+\w+\s*\([^;]*\)\s*\{", l)),
        max(1, sum(1 for l in doc.code_lines if re.match(r"^\s*[\w<>\[\]\s]+\s+\w+\s*\([^;]*\)\s*\{", l))),
    )
)

_GO_FUNC = re.compile(r"^\s*func\b")
_GO_IMPORT = re.compile(r"^\s*(?:import\b|package\b|\"[\w./-]+\"\s*$)")
_GO_VAR = re.compile(r"^\s*(?:var\s+\w+|\w+(?:\s*,\s*\w+)*\s*:=)[^\n]*$")
_GO_TYPE = re.compile(r"^\s*type\s+\w+")
signal("qsc_codego_cate_testfile")(lambda doc: float(doc.path.endswith("_test.go")))
signal("qsc_codego_frac_lines_func_ratio")(lambda doc: _ratio(sum(1 for l in doc.code_lines if _GO_FUNC.match(l)), len(doc.code_lines)))
signal("qsc_codego_score_lines_no_logic")(lambda doc: _no_logic(doc, _GO_FUNC, _GO_IMPORT, _GO_VAR, _SIMPLE_RETURN, _GO_TYPE))
signal("qsc_codego_frac_lines_print")(lambda doc: _ratio(doc.count_lines("fmt.Print"), len(doc.code_lines)))


signal("qsc_codego_cate_var_zero")(lambda doc: _var_zero(doc, _GO_VAR))


# ---- JavaScript ----

_JS_FUNC = re.compile(r"\bfunction\b|=>")
_JS_VAR = re.compile(r"\b(?:var|let|const)\s+[\w$\[{]")
_JS_IMPORT = re.compile(r"^\s*(?:import\b|export\b|(?:const|let|var)\s+\w+\s*=\s*require\()")
_JS_CLASS = re.compile(r"^\s*(?:export\s+)?(?:default\s+)?class\s+\w+")
_JS_SIMPLE_RETURN = re.compile(r"^\s*return\s*[\w\"'.\-]*\s*;?\s*$")


@signal("qsc_codejavascript_cate_ast")
def javascript_cate_ast(doc: Doc) -> float:
    import esprima

    parse = esprima.parseModule if re.search(r"\b(?:import|export)\b", doc.text) else esprima.parseScript
    try:
        parse(doc.text)
    except esprima.Error:
        return 0.0
    return 1.0


signal("qsc_codejavascript_cate_var_zero")(lambda doc: float(not _JS_VAR.search(doc.scan.code_only) and not re.search(r"function\s*\w*\s*\(\s*[\w$]", doc.scan.code_only)))
signal("qsc_codejavascript_frac_lines_func_ratio")(lambda doc: _ratio(sum(1 for l in doc.code_lines if _JS_FUNC.search(l)), len(doc.code_lines)))
signal("qsc_codejavascript_score_lines_no_logic")(
    lambda doc: _ratio(sum(1 for l in doc.code_lines if _JS_FUNC.search(l) or _JS_IMPORT.match(l) or _JS_CLASS.match(l) or _JS_SIMPLE_RETURN.match(l)), len(doc.code_lines))
)
signal("qsc_codejavascript_frac_lines_print")(lambda doc: _ratio(doc.count_lines("console.log"), len(doc.code_lines)))
signal("qsc_codejavascript_num_statement_line")(lambda doc: _ratio(doc.scan.code_only.count(";"), len(doc.code_lines)))
signal("qsc_codejavascript_frac_words_legal_var_name")(lambda doc: _legal(re.findall(r"\b(?:var|let|const)\s+([\w$]+)", doc.scan.code_only), r"^[a-z_$][a-zA-Z0-9_$]*$"))
signal("qsc_codejavascript_frac_words_legal_func_name")(lambda doc: _legal(re.findall(r"\bfunction\s+([\w$]+)", doc.scan.code_only), r"^[a-z_$][a-zA-Z0-9_$]*$"))
signal("qsc_codejavascript_frac_words_legal_class_name")(lambda doc: _legal(_CLASS_NAMES.findall(doc.scan.code_only), r"^[A-Z][a-zA-Z0-9]*$"))

# ---- HTML ----


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "noscript", "template"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "noscript", "template") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _html_text(doc: Doc) -> str | None:
    if "_html_text" not in doc.__dict__:
        parser = _VisibleText()
        try:
            parser.feed(doc.text)
            parser.close()
            doc.__dict__["_html_text"] = " ".join(" ".join(parser.parts).split())
        except Exception:  # html.parser raises only on pathological input; that is the "does not parse" case
            doc.__dict__["_html_text"] = None
    return doc.__dict__["_html_text"]


signal("qsc_codehtml_cate_ast")(lambda doc: float(_html_text(doc) is not None))
signal("qsc_codehtml_frac_words_text")(lambda doc: None if _html_text(doc) is None else _ratio(len(_html_text(doc)), len(doc.text)))
signal("qsc_codehtml_num_chars_text")(lambda doc: None if _html_text(doc) is None else float(len(_html_text(doc))))
