"""Language-specific signals of the released filter (`quality_signals/code_specific/*.py`, `utils/code/*_utils.py`).

The patterns are the released ones, verbatim, applied where the release applies them: to the comment-free code
(`Doc.code_content`, see tasks/clean/comments.py) as one string (`re.MULTILINE` where the release sets it),
with the released denominators (`Doc.code_lines`, the non-blank code lines) and the released rounding (C, Python
and HTML-free signals round to 8 places; C++, C#, Go, Java and JavaScript do not). Python walks the standard
`ast` with the released visitors (their quirks kept: only `def` functions, only `Name` targets); JavaScript
walks the `esprima` tree (the released parser). HTML uses BeautifulSoup's `html.parser` and `get_text()`, as
released. Substring counts (`pass`, `import`, `print`) reproduce the released false positives unless
`fix_substring_matching` is set; the C#/Go `cate_var_zero` compares a list to 0 (never fires) unless `fix_var_zero`.
"""

from __future__ import annotations

import ast
import posixpath

import regex as re

from tasks.clean.comments import python_statements
from tasks.clean.signals import Doc, _ratio, signal


def _unrounded(num: float, den: float) -> float | None:
    return num / den if den else None


# ---- Python (quality_signals/code_specific/python.py, utils/code/python_utils.py) ----


def _python_tree(doc: Doc) -> ast.AST | None:
    if "_py_tree" not in doc.__dict__:
        try:
            doc.__dict__["_py_tree"] = ast.parse(doc.text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            doc.__dict__["_py_tree"] = None
    return doc.__dict__["_py_tree"]


class _PythonFacts:
    """What the released visitors collect, with their traversal quirks: `find_functions` / `SimpleFunctionFinder`
    see `def` (not `async def`) anywhere; `find_class` every class; `find_variables` the `Name` targets of `Assign`,
    `For` targets and `def` arguments (positional only list `args.args`); `find_simple_variable` the
    `Assign`/`AnnAssign` `Name` targets directly in the body of a class that is not nested in another class (its
    visitor does not descend into a class). All of these are statements, so one pass over the statements
    (`comments.python_statements`) finds them, without walking the expressions."""

    def __init__(self, tree: ast.AST) -> None:
        self.functions = 0
        self.simple_functions = 0
        self.classes = 0
        self.variables: set[str] = set()
        self.class_members = 0
        for node, in_class in python_statements(tree):
            kind = type(node)
            if kind is ast.FunctionDef:
                self.functions += 1
                if len(node.body) == 1 and isinstance(node.body[0], ast.Return):
                    self.simple_functions += 1
                self.variables.update(arg.arg for arg in node.args.args)
            elif kind is ast.Assign:
                self.variables.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif kind is ast.For:
                if isinstance(node.target, ast.Name):
                    self.variables.add(node.target.id)
            elif kind is ast.ClassDef:
                self.classes += 1
                if not in_class:
                    self.class_members += _class_members(node)


def _python_facts(doc: Doc) -> _PythonFacts | None:
    if "_py_facts" not in doc.__dict__:
        tree = _python_tree(doc)
        doc.__dict__["_py_facts"] = None if tree is None else _PythonFacts(tree)
    return doc.__dict__["_py_facts"]


def _class_members(node: ast.ClassDef) -> int:
    """`find_simple_variable` of one class: `Name` targets of its `Assign`/`AnnAssign` body statements."""
    count = 0
    for item in node.body:
        if isinstance(item, ast.Assign):
            count += sum(1 for t in item.targets if isinstance(t, ast.Name))
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            count += 1
    return count


def _python_valid(doc: Doc) -> bool:
    return _python_tree(doc) is not None and len(doc.code_lines) > 0


@signal("qsc_codepython_cate_ast")
def python_cate_ast(doc: Doc) -> float:
    return float(_python_tree(doc) is not None)


@signal("qsc_codepython_frac_lines_func_ratio")
def python_func_ratio(doc: Doc) -> float | None:
    if not _python_valid(doc):
        return None
    return _ratio(_python_facts(doc).functions, len(doc.code_lines))


@signal("qsc_codepython_cate_var_zero")
def python_var_zero(doc: Doc) -> float | None:
    facts = _python_facts(doc)
    if facts is None:
        return None
    return float(not facts.variables)


def _count_substring(doc: Doc, needle: str, lower: bool) -> int:
    if doc.options.fix_substring_matching:
        pattern = re.compile(rf"\b{re.escape(needle)}\b")
        return sum(1 for line in doc.code_lines if pattern.search(line.lower() if lower else line))
    if lower:
        return sum(1 for line in doc.code_lines if needle in line.lower())
    return sum(1 for line in doc.code_lines if needle in line)


@signal("qsc_codepython_frac_lines_pass")
def python_pass(doc: Doc) -> float | None:
    return _ratio(_count_substring(doc, "pass", True), len(doc.code_lines)) or 0.0


@signal("qsc_codepython_frac_lines_import")
def python_import(doc: Doc) -> float | None:
    return _ratio(_count_substring(doc, "import", True), len(doc.code_lines)) or 0.0


@signal("qsc_codepython_frac_lines_print")
def python_print(doc: Doc) -> float | None:
    return _ratio(_count_substring(doc, "print", False), len(doc.code_lines))


@signal("qsc_codepython_frac_lines_simplefunc")
def python_simplefunc(doc: Doc) -> float | None:
    if not _python_valid(doc):
        return None
    return _unrounded(_python_facts(doc).simple_functions, len(doc.code_lines))  # released: not rounded


_PY_SIMPLE_RETURN = re.compile(r"^\s*return(\s+.+)?\s*$", re.MULTILINE)


@signal("qsc_codepython_score_lines_no_logic")
def python_no_logic(doc: Doc) -> float | None:
    if not _python_valid(doc):
        return None
    facts = _python_facts(doc)
    imports = sum(1 for line in doc.code_lines if "import" in line.strip().lower())
    returns = len(_PY_SIMPLE_RETURN.findall(doc.code_content))
    return _ratio(facts.functions + imports + facts.classes + returns + facts.class_members, len(doc.code_lines))


# ---- C / C++ (quality_signals/code_specific/c.py, c_plus.py, utils/code/c_utils.py) ----

_C_FUNCTION = re.compile(
    r'\b((?:[a-zA-Z_]\w*\s*(?:\*+)?\s+)+'
    r'(?:\*?\s*[a-zA-Z_]\w*)'
    r'\((?:[^)]*)\)\s*)')
_C_INCLUDE = re.compile(r'^\s*#\s*include\s+["<][^">]+[">]', re.MULTILINE)
_C_CLASS = re.compile(r'^\s*class\s+\w+\s*(:[^{]*)?\{', re.MULTILINE)
_C_SIMPLE_VARIABLE = re.compile(r'^\s*(?:unsigned\s+)?(?:int|float|double|char|bool|std::string|auto)\s+\w+\s*;', re.MULTILINE)
_C_SIMPLE_RETURN = re.compile(
    r'^\s*return\s*(?:(\w+|\d+|\"(?:[^\"\\]|\\.)*\"|\'(?:[^\'\\]|\\.)*\'|true|false|nullptr)\s*)?;\s*$', re.MULTILINE)
_C_VARIABLE = re.compile(
    r'\b((?:\w+(?:\s+\w+)?)\s+'
    r'(?:(?:\*+)?\s*'
    r'[\w\[\]]+'
    r'\s*(?:=\s*[^;]*)?'
    r'(?:,\s*(?:\*+)?\s*[\w\[\]]+\s*(?:=\s*[^;]*)?)*)'
    r'\s*;)')
_C_MAIN = re.compile(r'\bmain\s*\([^)]*\)\s*\{')
_C_DIRECTIVES = re.compile(r'#\s*include|#\s*define|#\s*if|#\s*ifdef|#\s*ifndef|#\s*else|#\s*elif|#\s*endif|#\s*error'
                           r'|#\s*pragma|#\s*warning|#\s*undef|#\s*line|struct|using')
_C_HEADER_EXTENSIONS = ("h", "hpp", "hxx", "hh", "h++")


def _findall_count(doc: Doc, pattern: re.Pattern) -> int:
    cache = doc.__dict__.setdefault("_pattern_counts", {})
    if pattern not in cache:
        cache[pattern] = sum(1 for _ in pattern.finditer(doc.code_content))
    return cache[pattern]


def _extension(path: str) -> str:
    """The notebook's `ext`: `os.path.splitext(file name)[1][1:]` (last extension, case kept)."""
    return posixpath.splitext(path.replace("\\", "/").rsplit("/", 1)[-1])[1][1:]


def _register_c(lang: str, rounded: bool, print_needles: tuple[str, ...]) -> None:
    p = f"qsc_code{lang}"
    ratio = _ratio if rounded else _unrounded
    signal(f"{p}_frac_lines_func_ratio")(lambda doc: ratio(_findall_count(doc, _C_FUNCTION), len(doc.code_lines)))
    signal(f"{p}_cate_bitsstdc")(lambda doc: float("bits/stdc++.h" in doc.code_content.strip().lower()[:200]))
    signal(f"{p}_nums_lines_main")(lambda doc: float(_findall_count(doc, _C_MAIN)))
    signal(f"{p}_frac_lines_goto")(lambda doc: ratio(sum(1 for l in doc.code_lines if "goto" in l), len(doc.code_lines)))
    signal(f"{p}_cate_var_zero")(lambda doc: float(_findall_count(doc, _C_VARIABLE) == 0))
    signal(f"{p}_score_lines_no_logic")(lambda doc: ratio(
        sum(_findall_count(doc, pat) for pat in (_C_FUNCTION, _C_INCLUDE, _C_SIMPLE_VARIABLE, _C_SIMPLE_RETURN, _C_CLASS)),
        len(doc.code_lines)))
    signal(f"{p}_frac_lines_print")(lambda doc: ratio(
        sum(1 for l in doc.code_lines if any(n in l for n in print_needles)), len(doc.code_lines)))
    signal(f"{p}_frac_lines_preprocessor_directives")(lambda doc: None if _extension(doc.path) in _C_HEADER_EXTENSIONS
                                                      else _ratio(sum(1 for l in doc.code_lines if _C_DIRECTIVES.search(l)), len(doc.code_lines)))


_register_c("c", rounded=True, print_needles=("printf",))
_register_c("cpp", rounded=False, print_needles=("cout", "printf"))

# ---- C# (quality_signals/code_specific/c_sharp.py, utils/code/csharp_utils.py) ----

_CS_FUNCTION = re.compile(
    r'^\s*'
    r'((?:(?:public|protected|private|internal)\s+)?'
    r'(?:(?:static|virtual|override|abstract|async)\s+)?'
    r'(?:(?!\s*(?:public|private|protected|if|else)\s*)(?:<\w+>)?\s*\w+\s+)'
    r'(?:\w+\s*)'
    r'(?:\((?:[^\)]*)\)))', re.MULTILINE)
_CS_VARIABLE = re.compile(
    r'\b(?:int|float|double|char|string|var|bool|byte|sbyte|short|ushort|uint|long|ulong|decimal)\s+\w+(?:\s*=\s*[^;\n]+)?',
    re.MULTILINE)
_CS_USING = re.compile(r'^\s*using\s+[a-zA-Z0-9_.]+\s*;', re.MULTILINE)
_CS_CLASS = re.compile(r'\b(?:public|private|protected|internal|static|abstract|sealed)?\s*class\s+\w+', re.MULTILINE)
_CS_SIMPLE_RETURN = re.compile(r'^\s*return\b(?:\s+[^;\n]+)?\s*;', re.MULTILINE)
_CS_SIMPLE_VARIABLE = re.compile(
    r'\b(?:int|float|double|char|string|bool|byte|sbyte|short|ushort|uint|long|ulong|decimal)\s+\w+\s*;', re.MULTILINE)


def _var_zero_list_quirk(doc: Doc, pattern: re.Pattern) -> float:
    """C#/Go `cate_var_zero`: the release compares the list of matches to 0, so it is always 0.0."""
    if doc.options.fix_var_zero:
        return float(_findall_count(doc, pattern) == 0)
    return 0.0


def _count_lines_with(doc: Doc, needle: str) -> float | None:
    if doc.options.fix_substring_matching:
        pattern = re.compile(rf"\b{re.escape(needle)}\b")
        return _unrounded(sum(1 for l in doc.code_lines if pattern.search(l)), len(doc.code_lines))
    return _unrounded(sum(1 for l in doc.code_lines if needle in l), len(doc.code_lines))


signal("qsc_codecsharp_frac_lines_func_ratio")(lambda doc: _unrounded(_findall_count(doc, _CS_FUNCTION), len(doc.code_lines)))
signal("qsc_codecsharp_cate_var_zero")(lambda doc: _var_zero_list_quirk(doc, _CS_VARIABLE))
signal("qsc_codecsharp_score_lines_no_logic")(lambda doc: _unrounded(
    sum(_findall_count(doc, p) for p in (_CS_FUNCTION, _CS_USING, _CS_SIMPLE_VARIABLE, _CS_SIMPLE_RETURN, _CS_CLASS)),
    len(doc.code_lines)))
signal("qsc_codecsharp_frac_lines_print")(lambda doc: _count_lines_with(doc, "Console.WriteLine"))

# ---- Go (quality_signals/code_specific/go.py, utils/code/go_utils.py) ----

_GO_FUNCTION = re.compile(
    r'(^func\s+'
    r'(?:\(\s*\w+\s+\*?\w+\s*\))?\s*'
    r'(?:\w+)\s*'
    r'\((?:[^)]*)\)\s*'
    r'(?:\([^)]+\)|[\w\[\]]+)?\s*)', re.MULTILINE)
_GO_CLASS = re.compile(r'^\s*type\s+\w+\s+(struct|interface)\s*\{[^}]*\}', re.MULTILINE | re.DOTALL)
_GO_SIMPLE_RETURN = re.compile(r'^\s*return(?:\s+[^;\n]+)?\s*;?\s*$', re.MULTILINE)
_GO_VARIABLE = re.compile(
    r'^\s*((?:var|const)\s+\w+(?:,\s*\w+)*\s+[\w\[\]\*]+'
    r'|(?:var|const)\s+\w+(?:,\s*\w+)*(?:\s+[\w\[\]\*]+)?\s*=\s*[^;\n]+'
    r'|\w+(?:\s*,\s*\w+)*\s*:=\s*[^;\n]+'
    r'|(?:var|const)\s+\(\s*(?:\w+\s+[\w\*\[\]]+\s*)+\))', re.MULTILINE)
_GO_SIMPLE_VARIABLE = re.compile(r'^\s*var\s+(\w+)\s+(\w+)\s*;?\s*$', re.MULTILINE)
_GO_SINGLE_IMPORT = re.compile(r'^import\s+"[^"]+"$')


def _go_imports(code: str) -> int:
    """`find_imports`: single-line imports and `import (` lines (the released loop resets its multi-line flag on
    every line, so the lines inside the parentheses are never counted)."""
    count = 0
    for line in code.split("\n"):
        stripped = line.strip()
        if _GO_SINGLE_IMPORT.match(stripped) or stripped == "import (":
            count += 1
    return count


signal("qsc_codego_cate_testfile")(lambda doc: float(doc.path.replace("\\", "/").rsplit("/", 1)[-1].lower().endswith("_test.go")))
signal("qsc_codego_frac_lines_func_ratio")(lambda doc: _unrounded(_findall_count(doc, _GO_FUNCTION), len(doc.code_lines)))
signal("qsc_codego_cate_var_zero")(lambda doc: _var_zero_list_quirk(doc, _GO_VARIABLE))
signal("qsc_codego_score_lines_no_logic")(lambda doc: _unrounded(
    _findall_count(doc, _GO_FUNCTION) + _go_imports(doc.code_content) + _findall_count(doc, _GO_SIMPLE_VARIABLE)
    + _findall_count(doc, _GO_SIMPLE_RETURN) + _findall_count(doc, _GO_CLASS), len(doc.code_lines)))
signal("qsc_codego_frac_lines_print")(lambda doc: _count_lines_with(doc, "fmt.Print"))

# ---- Java (quality_signals/code_specific/java.py, utils/code/java_utils.py) ----

_JAVA_FUNCTION = re.compile(
    r'^\s*'
    r'((?:(?:public|protected|private|static)\s+)*'
    r'(?:(?!\s*(?:public|private|protected|else|if)\s*)(?:<\w+>)?\s*\w+\s+)'
    r'(?:\w+\s*)'
    r'(?:\((?:[^\)]*)\))'
    r'(?:\s*throws\s+[\w\, ]+)?)', re.MULTILINE)
_JAVA_IMPORT = re.compile(r'^\s*import\s+([\w\.\*]+)\s*;\s*$', re.MULTILINE)
_JAVA_SIMPLE_VARIABLE = re.compile(
    r'^\s*'
    r'((?:(?:public|protected|private|final|static)\s+)*'
    r'(?:int|float|boolean|char|double|String|(?:[A-Z][\w<>]*))'
    r'\s+(\w+)\s*;)', re.MULTILINE)
_JAVA_VARIABLE = re.compile(
    r'^\s*'
    r'((?:(?:public|protected|private|final|static)\s+)*'
    r'(?:int|float|boolean|char|double|String|(?:[A-Z][\w<>]*))'
    r'\s+(?:\w+)\s*'
    r'(?:\s*=\s*[^;]+)?;)', re.MULTILINE)
_JAVA_SIMPLE_RETURN = re.compile(
    r'^\s*(return(?:;'
    r'|\s+(?:\w*|\"(?:[^\"\\]*(?:\\.[^\"\\]*)*)\")\s*;\s*))$', re.MULTILINE)
_JAVA_CLASS = re.compile(
    r'^\s*((?:public\s+|protected\s+|private\s+)?'
    r'(?:final\s+|abstract\s+)?'
    r'class\s+([\w<>]+))', re.MULTILINE)


def _findall(doc: Doc, pattern: re.Pattern) -> list:
    cache = doc.__dict__.setdefault("_pattern_matches", {})
    if pattern not in cache:
        cache[pattern] = pattern.findall(doc.code_content)
    return cache[pattern]


def _java_modifier_share(doc: Doc) -> float | None:
    """`frac_words_no_modifier`: functions whose match contains public/protected/private (sic), plus classes
    whose match tuple has an element equal to one of them (`'public' in (whole, name)`, so almost never)."""
    functions, classes = _findall(doc, _JAVA_FUNCTION), _findall(doc, _JAVA_CLASS)
    with_modifier = sum(1 for f in functions if any(m in f for m in ("public", "protected", "private")))
    with_modifier += sum(1 for c in classes if any(m in c for m in ("public", "protected", "private")))
    return _unrounded(with_modifier, len(functions) + len(classes))


def _legal_share(items: list, name_of, pattern: str) -> float | None:
    names = re.compile(pattern)
    return _unrounded(sum(1 for item in items if names.match(name_of(item))), len(items))


signal("qsc_codejava_cate_var_zero")(lambda doc: float(_findall_count(doc, _JAVA_VARIABLE) == 0))
signal("qsc_codejava_frac_lines_func_ratio")(lambda doc: _unrounded(_findall_count(doc, _JAVA_FUNCTION), len(doc.code_lines)))
signal("qsc_codejava_score_lines_no_logic")(lambda doc: _unrounded(
    sum(_findall_count(doc, p) for p in (_JAVA_FUNCTION, _JAVA_IMPORT, _JAVA_SIMPLE_VARIABLE, _JAVA_SIMPLE_RETURN, _JAVA_CLASS)),
    len(doc.code_lines)))
signal("qsc_codejava_frac_words_no_modifier")(_java_modifier_share)
# `line[1]` of a one-group match is its second character (released: find_variables/find_functions have one group)
signal("qsc_codejava_frac_words_legal_var_name")(lambda doc: _legal_share(_findall(doc, _JAVA_VARIABLE), lambda m: m[1], r'^[a-z][a-zA-Z0-9]*$'))
signal("qsc_codejava_frac_words_legal_func_name")(lambda doc: _legal_share(_findall(doc, _JAVA_FUNCTION), lambda m: m[1], r'^[a-zA-Z][a-zA-Z0-9]*$'))
signal("qsc_codejava_frac_words_legal_class_name")(lambda doc: _legal_share(_findall(doc, _JAVA_CLASS), lambda m: m[1], r'^[A-Z][a-zA-Z0-9]*$'))
signal("qsc_codejava_frac_lines_print")(lambda doc: _count_lines_with(doc, "System.out.print"))

# ---- JavaScript (quality_signals/code_specific/javascript.py, utils/code/js_utils.py) ----


def _js_tree(doc: Doc):
    """`parse_js`: module mode when the text contains `import` or `export` (substring), falling back to script
    mode when that fails; None when the script parse fails."""
    if "_js_tree" not in doc.__dict__:
        import esprima

        tree = None
        try:
            if "import" in doc.text or "export" in doc.text:
                try:
                    tree = esprima.parseModule(doc.text)
                except esprima.Error:
                    tree = esprima.parseScript(doc.text)
            else:
                tree = esprima.parseScript(doc.text)
        except esprima.Error:
            tree = None
        except RecursionError:
            tree = None
        doc.__dict__["_js_tree"] = tree
    return doc.__dict__["_js_tree"]


def _module_exports_name(node):
    """`module.exports.NAME = ...`: NAME, else None (the released attribute chain, errors included)."""
    left = node.left
    if (left.type == "MemberExpression" and left.object.type == "MemberExpression"
            and left.object.object.name == "module" and left.object.property.name == "exports"):
        return left.property.name
    return None


class _JsFacts:
    """The released `find_variables`, `find_simple_variables`, `find_functions`, `find_classes`,
    `find_simple_returns` and `find_imports` in one walk over `vars(node)` (the released `traverse`)."""

    def __init__(self, tree) -> None:
        import esprima

        self._nodes = esprima.nodes
        self.variables: list = []
        self.simple_variables: list = []
        self.functions: list = []
        self.classes: list = []
        self.simple_returns = 0
        self.imports = 0
        self._walk(tree)

    def _walk(self, root) -> None:
        Node = self._nodes.Node
        FunctionExpression = self._nodes.FunctionExpression
        ClassDeclaration = self._nodes.ClassDeclaration
        stack = [root]
        while stack:
            node = stack.pop()
            kind = node.type
            if kind == "VariableDeclaration":
                for d in node.declarations:
                    if d and d.id.name and not isinstance(d.init, FunctionExpression):
                        self.variables.append(d.id.name)
                    if d and not isinstance(d.init, FunctionExpression) and (d.init is None or d.init.type in ("Literal", "Identifier", "UnaryExpression")):
                        self.simple_variables.append(d.id.name)
                    if isinstance(d.init, FunctionExpression) and d.id and d.id.name:
                        self.functions.append(d.id.name)
            elif kind == "AssignmentExpression":
                name = _module_exports_name(node)
                right = node.right.type
                if name and right not in ("FunctionExpression", "ArrowFunctionExpression"):
                    self.variables.append(name)
                    if right in ("Literal", "Identifier", "UnaryExpression"):
                        self.simple_variables.append(name)
                if name and right in ("FunctionExpression", "ArrowFunctionExpression"):
                    self.functions.append(name)
            elif kind == "FunctionDeclaration":
                if node.id and node.id.name:
                    self.functions.append(node.id.name)
            elif kind == "ReturnStatement":
                if node.argument is None or node.argument.type in ("Literal", "Identifier", "UnaryExpression"):
                    self.simple_returns += 1
            elif kind == "ImportDeclaration":
                self.imports += 1
            if isinstance(node, ClassDeclaration) and node.id and node.id.name:
                self.classes.append(node.id.name)
            children = []
            for value in vars(node).values():
                if isinstance(value, Node):
                    children.append(value)
                elif isinstance(value, list):
                    children.extend(item for item in value if isinstance(item, Node))
            stack.extend(reversed(children))


def _js_facts(doc: Doc) -> _JsFacts | None:
    if "_js_facts" not in doc.__dict__:
        tree = _js_tree(doc)
        doc.__dict__["_js_facts"] = None if tree is None else _JsFacts(tree)
    return doc.__dict__["_js_facts"]


def _js_ratio(doc: Doc, count) -> float | None:
    if not doc.code_lines or _js_tree(doc) is None:
        return None
    return count(_js_facts(doc)) / len(doc.code_lines)


def _js_names(doc: Doc, names, pattern: str) -> float | None:
    facts = _js_facts(doc)
    if facts is None:
        return None
    return _legal_share(names(facts), lambda n: n, pattern)


signal("qsc_codejavascript_cate_ast")(lambda doc: float(bool(_js_tree(doc))))
signal("qsc_codejavascript_cate_var_zero")(lambda doc: None if _js_facts(doc) is None else float(len(_js_facts(doc).variables) == 0))
signal("qsc_codejavascript_frac_lines_func_ratio")(lambda doc: _js_ratio(doc, lambda f: len(f.functions)))
signal("qsc_codejavascript_num_statement_line")(lambda doc: _js_ratio(doc, lambda f: len(_js_tree(doc).body)))
signal("qsc_codejavascript_score_lines_no_logic")(lambda doc: _js_ratio(
    doc, lambda f: len(f.functions) + f.imports + len(f.simple_variables) + f.simple_returns + len(f.classes)))
signal("qsc_codejavascript_frac_words_legal_var_name")(lambda doc: _js_names(doc, lambda f: f.variables, r'^[a-z\$][a-zA-Z0-9]*$'))
signal("qsc_codejavascript_frac_words_legal_func_name")(lambda doc: _js_names(doc, lambda f: f.functions, r'^[a-zA-Z\$][a-zA-Z0-9]*$'))
signal("qsc_codejavascript_frac_words_legal_class_name")(lambda doc: _js_names(doc, lambda f: f.classes, r'^[A-Z][a-zA-Z0-9]*$'))
signal("qsc_codejavascript_frac_lines_print")(lambda doc: _count_lines_with(doc, "console.log"))

# ---- HTML (quality_signals/code_specific/html.py, utils/code/html_utils.py) ----


def _html_text(doc: Doc) -> str | None:
    """`BeautifulSoup(text, features='html.parser').get_text()`, or None when BeautifulSoup raises."""
    if "_html_text" not in doc.__dict__:
        from bs4 import BeautifulSoup

        try:
            doc.__dict__["_html_text"] = BeautifulSoup(doc.text, features="html.parser").get_text()
        except Exception:
            doc.__dict__["_html_text"] = None
    return doc.__dict__["_html_text"]


signal("qsc_codehtml_cate_ast")(lambda doc: float(_html_text(doc) is not None))
signal("qsc_codehtml_frac_words_text")(lambda doc: None if not doc.text or _html_text(doc) is None else len(_html_text(doc)) / len(doc.text))
signal("qsc_codehtml_num_chars_text")(lambda doc: None if _html_text(doc) is None else float(len(_html_text(doc))))
