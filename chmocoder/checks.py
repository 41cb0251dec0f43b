"""What an answer claims about its code, turned into checks that can be run.

An answer is Markdown with fenced code. Its Python blocks split into *definitions* (imports,
functions, classes, constants: the solution) and *usage* (example calls, prints, asserts). Usage
carries claims: `print(f(3))  # Output: 5`, `>>>` examples, `assert`s, `def test_*` functions. The
user's message carries claims too (`>>>` examples, "`f(3)` should return 5") and, for a bug report,
code whose failure must be gone on the fix. Each claim becomes a `Check`: a few lines to run after
the solution, and what they must print, return or raise. Nothing here runs code: `harness` writes
the program the sandbox runs, and `read_results` reads what it reported.
"""

from __future__ import annotations

import ast
import doctest
import inspect
import io
import json
import re
import sys
import tokenize
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal["output", "equals", "raises", "runs", "not_raises"]
Origin = Literal["answer", "user", "generated"]

FENCE = re.compile(r"^```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^```[ \t]*$|\Z)", re.S | re.M)
PYTHON_TAGS = {"python", "py", "python3", "py3", "pycon"}
# A comment that states what a line prints or returns: "# Output: 5", "# -> [1, 2]", "# returns True".
CLAIM = re.compile(
    r"^#+\s*(?:(?:expected\s+)?(?:output|outputs|prints?|returns?|result|gives?|expected|displays?)\b\s*[:=]?|=>|->|→)\s*(.+)$",
    re.I,
)
RAISES = re.compile(r"^#+\s*(?:raises?|throws?|error:?)\s*:?\s*([A-Z]\w*(?:Error|Exception|Interrupt|Exit))\b", re.I)
# "`f(3)` should return 5", "f(3) returns 2 instead of 3", "f(3) == 5", "f(3) -> 5", "f(3) ==> 5",
# "f(3) ➞ 5", "f(3) = 5" in a user's words (the arrows and the single "=" are how many write examples).
USER_CALL = re.compile(
    r"`?(?P<call>[A-Za-z_]\w*\((?:[^()`]|\([^()`]*\))*\))`?\s*"
    r"(?P<verb>should (?:return|be|give|output|print)|must return|is expected to return|==>|==|->|→|➞|=>|=(?!=)|"
    r"returns?|gives?|outputs?|prints?)\s*`?(?P<rest>[^\n]*)",
    re.I,
)
INSTEAD = re.compile(r"\binstead of\s*`?(?P<want>[^\n]*)", re.I)
EXPECTED = re.compile(r"should|must|expected", re.I)
# Modules that cannot work without network, processes, a screen or a keyboard, in or out of a sandbox.
NEEDS_OUTSIDE = {
    "socket": "the network",
    "urllib.request": "the network",
    "http.client": "the network",
    "requests": "the network",
    "httpx": "the network",
    "aiohttp": "the network",
    "smtplib": "the network",
    "ftplib": "the network",
    "subprocess": "other programs",
    "multiprocessing": "other processes",
    "tkinter": "a screen",
    "turtle": "a screen",
    "pygame": "a screen",
}


@dataclass(frozen=True)
class CodeBlock:
    language: str
    code: str


@dataclass(frozen=True)
class Check:
    """One claim to run: `source` after the solution; `want` is what it must print, equal or raise."""

    kind: Kind
    source: str
    origin: Origin
    label: str
    want: str = ""
    expr: str = ""  # for "output" and "equals": the expression whose value the claim is about
    against_original: bool = False  # a user's example in a bug report: run it on their code too


@dataclass
class CheckResult:
    check: Check
    passed: bool
    got: str = ""
    error: str = ""
    original_passed: bool | None = None  # the same check on the user's code, when it was run there


@dataclass
class Program:
    """An answer's Python: the solution (definitions) and the checks its usage claims."""

    solution: str
    checks: list[Check] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    syntax_error: str = ""


def code_blocks(markdown: str) -> list[CodeBlock]:
    return [CodeBlock(m.group(1).lower(), m.group(2)) for m in FENCE.finditer(markdown)]


def parses(code: str) -> bool:
    """Whether `code` is Python that compiles to a syntax tree."""
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def python_blocks(markdown: str) -> list[str]:
    """The Python code of an answer: blocks tagged Python, or untagged ones that parse as Python
    and look like code. `>>>` sessions are kept too (they are examples)."""
    found = []
    for block in code_blocks(markdown):
        code = block.code.rstrip()
        if not code.strip():
            continue
        if block.language in PYTHON_TAGS or (
            block.language == "" and (parses(code) and re.search(r"\b(def|import|print|return|class)\b", code))
        ):
            found.append(code)
        elif block.language == "" and code.lstrip().startswith(">>>"):
            found.append(code)
    return found


def has_python(markdown: str) -> bool:
    return bool(python_blocks(markdown))


def _defined_names(tree: ast.Module) -> set[str]:
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test)


def _calls_any(node: ast.AST, names: set[str]) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in names or name in {"print", "input"}:
                return True
    return False


def is_definition(node: ast.stmt, defined: set[str]) -> bool:
    """Imports, functions, classes and constants make the solution; everything else shows it in use."""
    if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return True
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        return not _calls_any(node, defined)
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return True  # a module docstring
    return False


def _comments(code: str) -> dict[int, str]:
    """Line number → the comment on that line."""
    found: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.COMMENT:
                found[tok.start[0]] = tok.string
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return found


def _claim_after(node: ast.stmt, comments: dict[int, str], lines: list[str]) -> str | None:
    """The claim in the comment on the statement's last line, or on a comment-only line right after."""
    end = node.end_lineno or node.lineno
    own = comments.get(end)
    if own:
        match = CLAIM.match(own.strip())
        if match:
            return match.group(1).strip()
        bare = own.lstrip("#").strip()
        if bare and _is_literal(bare):
            return bare
    following = end + 1
    if following <= len(lines) and lines[following - 1].strip().startswith("#"):
        match = CLAIM.match(lines[following - 1].strip())
        if match:
            return match.group(1).strip()
    return None


def _raises_after(node: ast.stmt, comments: dict[int, str]) -> str | None:
    own = comments.get(node.end_lineno or node.lineno, "")
    match = RAISES.match(own.strip())
    return match.group(1) if match else None


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _assert_check(node: ast.Assert, origin: Origin) -> Check:
    source = ast.unparse(node)
    test = node.test
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        left, right = ast.unparse(test.left), ast.unparse(test.comparators[0])
        return Check("equals", source, origin, source, want=right, expr=left)
    return Check("runs", source, origin, source)


def _usage_checks(usage: list[ast.stmt], code: str, origin: Origin) -> list[Check]:
    """Claims of the example code; statements that claim nothing are kept as 'the examples run'."""
    comments, lines = _comments(code), code.splitlines()
    checks: list[Check] = []
    plain: list[str] = []
    for node in usage:
        source = ast.unparse(node)
        raises = _raises_after(node, comments)
        claim = None if raises else _claim_after(node, comments, lines)
        if isinstance(node, ast.Assert):
            checks.append(_assert_check(node, origin))
        elif raises:
            checks.append(Check("raises", source, origin, f"{source} raises {raises}", want=raises))
        elif claim is not None and isinstance(node, ast.Expr):
            checks.append(_output_check(node, source, claim, origin))
        else:
            plain.append(source)
    if plain:
        label = "the example code runs without an error"
        checks.append(Check("runs", "\n".join(plain), origin, label))  # last: a hang here costs no claim
    return checks


def _output_check(node: ast.Expr, source: str, claim: str, origin: Origin) -> Check:
    call = node.value
    expr = source
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print":
        expr = ast.unparse(call.args[0]) if len(call.args) == 1 and not call.keywords else ""
    return Check("output", source, origin, f"{source}  → {claim}", want=claim, expr=expr)


def _doctest_chunks(text: str) -> list[str]:
    """Each run of `>>>` examples with their expected output, dedented. Parsing a whole message at once
    failed on its first line indented otherwise (DocTestParser wants one indentation throughout), so
    the examples in a docstring the user pasted inside a code block were never checked."""
    lines, chunks, i = text.splitlines(), [], 0
    while i < len(lines):
        start = re.match(r"^(\s*)>>> ", lines[i])
        if start is None:
            i += 1
            continue
        indent, end = start.group(1), i + 1
        while end < len(lines) and lines[end].strip() and lines[end].startswith(indent):
            if lines[end].strip().startswith(('"""', "'''", "```")):
                break
            end += 1
        chunks.append("\n".join(line[len(indent) :] for line in lines[i:end]))
        i = end
    return chunks


def _doctest_checks(text: str, origin: Origin) -> list[Check]:
    examples = []
    for chunk in _doctest_chunks(text):
        try:
            examples += doctest.DocTestParser().get_examples(chunk)
        except ValueError:
            continue
    checks = []
    for ex in examples:
        source = ex.source.strip()
        want = ex.want.rstrip("\n")
        if ex.exc_msg is not None:
            name = ex.exc_msg.split(":")[0].strip().split(".")[-1]
            checks.append(Check("raises", source, origin, f">>> {source} raises {name}", want=name))
        else:
            checks.append(Check("output", source, origin, f">>> {source}  → {want}", want=want, expr=source))
    return checks


def parse_program(blocks: list[str], origin: Origin = "answer") -> Program:
    """Split code blocks into one solution and the checks their usage and doctests claim."""
    solution: list[str] = []
    checks: list[Check] = []
    functions: list[str] = []
    syntax_error = ""
    for code in blocks:
        if code.lstrip().startswith(">>>"):
            checks += _doctest_checks(code, origin)
            continue
        tree, problem = _parse_salvaging(code)
        if tree is None:
            return Program("\n\n".join(solution), checks, functions, problem)
        syntax_error = syntax_error or problem
        for docstring in _docstrings(tree, code):
            checks += _doctest_checks(docstring, origin)
        defined = _defined_names(tree)
        functions += [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        usage: list[ast.stmt] = []
        kept: list[ast.stmt] = []
        for node in tree.body:
            if _is_main_guard(node):
                usage += node.body  # type: ignore[attr-defined]
            elif is_definition(node, defined):
                kept.append(node)
            else:
                usage.append(node)
        solution.append(_source_of(code, kept))
        checks += _test_function_checks(tree, origin)
        checks += _usage_checks(usage, code, origin)
    kept = "\n\n".join(s for s in solution if s.strip())
    return Program(kept, _unique(checks), list(dict.fromkeys(functions)), syntax_error)


def _parse_salvaging(code: str) -> tuple[ast.Module | None, str]:
    """Parse a block; if it breaks after some whole top-level statements (an answer cut off by the
    length limit, or a broken example at the end), keep those and say where it broke."""
    try:
        return ast.parse(code), ""
    except SyntaxError as exc:
        problem = f"line {exc.lineno}: {exc.msg}"
        lines = code.splitlines()
        starts = [i for i, line in enumerate(lines[: exc.lineno or 1]) if line[:1] not in ("", " ", "\t", "#")]
        for cut in reversed(starts[1:]):
            try:
                return ast.parse("\n".join(lines[:cut])), problem
            except SyntaxError:
                continue
        return None, problem


def _docstrings(tree: ast.Module, code: str) -> list[str]:
    """Docstrings of the module, its functions and classes, dedented (where `>>>` examples live).
    Read as Python reads them, as doctest does; but where that breaks an example (a `"a\\nb"` in a
    docstring that is not raw becomes a line break that cuts the example in two: a correct answer
    failed its own copy of the user's example), as written, which is what its writer meant."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            text = ast.get_docstring(node, clean=True)
            if text and ">>>" in text and not _examples_compile(text):
                written = ast.get_source_segment(code, node.body[0].value) or ""  # type: ignore[attr-defined]
                text = inspect.cleandoc(_unquoted(written))
            if text and ">>>" in text:
                found.append(text)
    return found


def _examples_compile(text: str) -> bool:
    try:
        for chunk in _doctest_chunks(text):
            for example in doctest.DocTestParser().get_examples(chunk):
                compile(example.source, "<example>", "single")
    except (SyntaxError, ValueError):
        return False
    return True


def _unquoted(literal: str) -> str:
    """The text inside a string literal's quotes, its escapes left as they are written."""
    body = literal.lstrip("rRuUbB")
    quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    return body[len(quote) : len(body) - len(quote)] if body.endswith(quote) and len(body) >= 2 * len(quote) else body


def _source_of(code: str, nodes: list[ast.stmt]) -> str:
    """The original text of these statements (keeping comments and formatting inside them)."""
    lines = code.splitlines()
    parts = []
    for node in nodes:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        parts.append("\n".join(lines[first - 1 : node.end_lineno]))
    return "\n".join(parts)


def _test_function_checks(tree: ast.Module, origin: Origin) -> list[Check]:
    """pytest-style `def test_*()` functions and unittest cases in the answer are checks too."""
    checks = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test") and not node.args.args:
            checks.append(Check("runs", f"{node.name}()", origin, f"{node.name}()"))
        elif isinstance(node, ast.ClassDef) and any("TestCase" in ast.unparse(b) for b in node.bases):
            source = (
                "import unittest as _unittest, io as _io\n"
                f"_result = _unittest.TextTestRunner(stream=_io.StringIO()).run("
                f"_unittest.defaultTestLoader.loadTestsFromTestCase({node.name}))\n"
                "assert _result.wasSuccessful(), '; '.join(str(e[1]).strip().splitlines()[-1] "
                "for e in _result.failures + _result.errors)"
            )
            checks.append(Check("runs", source, origin, f"the tests in {node.name}"))
    return checks


def _unique(checks: list[Check]) -> list[Check]:
    seen: set[tuple[str, str, str]] = set()
    kept = []
    for check in checks:
        key = (check.kind, check.source, check.want)
        if key not in seen:
            seen.add(key)
            kept.append(check)
    return kept


def solution_code(answer: str) -> str:
    """The runnable solution of an answer: its Python definitions, without example calls."""
    return parse_program(python_blocks(answer)).solution


def _literal_prefix(text: str) -> str | None:
    """The longest start of `text` that is a Python literal ("5 but got 6" → "5"), unless the text goes
    on computing with it ("1 + 9 + 0 = 10" is a working, not the value 1)."""
    text = text.strip().strip("`").strip()
    for end in range(len(text), 0, -1):
        candidate = text[:end].rstrip(" .,;:`")
        if candidate and _is_literal(candidate):
            following = text[len(candidate) :].lstrip()
            return None if following[:1] in tuple("+-*/%=<>&|^") else candidate
    return None


def user_checks(message: str, functions: list[str], original: str) -> list[Check]:
    """Claims in the user's own words and examples, about functions the answer defines.

    In a bug report (`original` is the user's code) a plain "`f(3)` returns 5" tells what the bug
    does, not what is wanted: only "should return", "expected" or "instead of" state the wanted
    value. A call that comes after another ("`f('b')` after `f('a')` returns …") is about the
    sequence, not the call alone, and is left out."""
    checks = [c for c in _doctest_checks(message, "user") if _names_any(c.source, functions)]
    position = 0
    while match := USER_CALL.search(message, position):
        position = match.end("verb")  # the rest of the line may hold the next claim
        call, rest = match.group("call"), _until_next_call(match.group("rest"))
        if call.split("(")[0] not in functions or not parses(call) or _after_another(message, match.start()):
            continue
        instead = INSTEAD.search(rest)
        if original and not instead and not EXPECTED.search(match.group("verb")):
            continue  # what the bug does
        want = _literal_prefix(instead.group("want")) if instead else _literal_prefix(rest)
        if want is None:
            continue
        checks.append(Check("equals", f"assert {call} == {want}", "user", f"{call} == {want}", want=want, expr=call))
    return [replace_original(c, bool(original)) for c in _unique(checks)]


def _until_next_call(rest: str) -> str:
    """A claim's words up to the next call it names ("fib(n) should return …, but `fib(5)` returns 8")."""
    following = re.search(r"`?[A-Za-z_]\w*\(", rest)
    return rest[: following.start()] if following else rest


def _after_another(message: str, start: int) -> bool:
    return re.search(r"\bafter\s*`?$", message[max(0, start - 12) : start]) is not None


def replace_original(check: Check, has_original: bool) -> Check:
    return Check(**(asdict(check) | {"against_original": has_original}))


def _names_any(source: str, names: list[str]) -> bool:
    return any(re.search(rf"\b{re.escape(name)}\s*\(", source) for name in names)


def original_error_checks(user_blocks: list[str], error_name: str) -> list[Check]:
    """A bug report's own example: the user's calls, which raised `error_name` on their code,
    must not raise it on the fix."""
    program = parse_program(user_blocks, "user")
    calls = [c.source for c in program.checks if c.kind in ("runs", "output", "equals")]
    if not calls or not error_name:
        return []
    source = "\n".join(calls)
    first = source.splitlines()[0]
    return [
        Check(
            "not_raises",
            source,
            "user",
            f"your example ({first}) no longer raises {error_name}",
            want=error_name,
            against_original=True,
        )
    ]


def reported_error(message: str) -> str:
    """The exception a user reports: from a pasted traceback, or 'it raises IndexError'."""
    lines = re.findall(r"^\s*([A-Z]\w*(?:Error|Exception))(?::|$)", message, re.M)
    if lines:
        return lines[-1]
    named = re.search(r"\b([A-Z]\w*Error)\b", message)
    return named.group(1) if named else ""


def outside_needs(solution: str) -> str:
    """Why the solution cannot be run in a sandbox ('' when it can): it needs the network, files,
    other programs or a package the sandbox does not have."""
    try:
        tree = ast.parse(solution)
    except SyntaxError:
        return ""
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            for module, what in NEEDS_OUTSIDE.items():
                if name == module or name.startswith(module + "."):
                    return f"it needs {what} ({name})"
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names:
                return f"it needs the package {top}, which the sandbox does not have"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            return "it reads or writes files"
    return ""


HARNESS = r"""
import ast as _ast, contextlib as _cl, doctest as _dt, io as _io, json as _json, traceback as _tb
import chmocoder_sandbox as _sb

_CHECKS = _json.loads(%(checks)s)
_LIMIT = 4000


class _Box(_io.StringIO):
    def write(self, s):
        if self.tell() > _LIMIT:
            raise RuntimeError("the check printed too much")
        return super().write(s)


def _emit(**event):
    _sb.emit(_json.dumps(event))


def _error(exc):
    return "".join(_tb.format_exception_only(type(exc), exc)).strip()[-600:]


def _load(source):
    ns = {"__name__": "__answer__"}
    try:
        exec(compile(source, "answer.py", "exec"), ns)
    except BaseException as exc:
        return None, _error(exc)
    return ns, ""


def _run(check, ns):
    box = _Box()
    kind, source, want = check["kind"], check["source"], check["want"]
    try:
        with _cl.redirect_stdout(box), _cl.redirect_stderr(box):
            if kind == "equals":
                got, expected = eval(check["expr"], ns), eval(want, ns)
                return got == expected, repr(got), ""
            mode = "single" if kind == "output" and _is_expr(source) else "exec"
            exec(compile(source, "check.py", mode), ns)
    except BaseException as exc:
        name = type(exc).__name__
        if kind == "raises":
            return name == want, name, ""
        if kind == "not_raises":
            return name != want, name, _error(exc)
        return False, box.getvalue()[-600:], _error(exc)
    got = box.getvalue()
    if kind == "output":
        return _same_output(want, got, check["expr"], ns), got[-600:], ""
    if kind == "raises":
        return False, "no exception", ""
    return True, got[-600:], ""


def _is_expr(source):
    try:
        return isinstance(_ast.parse(source).body[0], _ast.Expr) and len(_ast.parse(source).body) == 1
    except SyntaxError:
        return False


def _same_output(want, got, expr, ns):
    flags = _dt.ELLIPSIS | _dt.NORMALIZE_WHITESPACE
    if _dt.OutputChecker().check_output(want + "\n", got, flags):
        return True
    try:
        value = eval(expr, ns) if expr else None
        return expr != "" and value == _ast.literal_eval(want)
    except BaseException:
        return False


def _main():
    answer, problem = _load(%(solution)s)
    _emit(event="solution", ok=answer is not None, error=problem)
    original = _load(%(original)s)[0] if %(original)s else None
    if answer is None:
        return
    for index, check in enumerate(_CHECKS):
        _emit(event="start", index=index)
        passed, got, error = _run(check, answer)
        before = None
        if check["against_original"] and original is not None:
            before = _run(check, original)[0]
        _emit(event="result", index=index, passed=bool(passed), got=got, error=error, original_passed=before)


_main()
"""


def harness(solution: str, checks: list[Check], original: str = "") -> str:
    """The program the sandbox runs: load the solution (and the user's original code), then each
    check in turn, reporting every result as it comes (so results before a timeout are kept)."""
    payload = json.dumps([asdict(c) for c in checks])
    return HARNESS % {"checks": repr(payload), "solution": repr(solution), "original": repr(original)}


def read_results(checks: list[Check], events: list[dict[str, Any]]) -> tuple[str, list[CheckResult]]:
    """What the harness reported: a load error ('' if the solution loaded) and one result per check
    that ran. A check that started but never reported is the one the run was stopped in."""
    load_error = ""
    results: dict[int, CheckResult] = {}
    for event in events:
        kind = event.get("event")
        if kind == "solution" and not event.get("ok"):
            load_error = str(event.get("error") or "the code fails to run")
        elif kind == "result" and 0 <= int(event.get("index", -1)) < len(checks):
            index = int(event["index"])
            results[index] = CheckResult(
                checks[index],
                bool(event.get("passed")),
                str(event.get("got") or ""),
                str(event.get("error") or ""),
                event.get("original_passed"),
            )
    return load_error, [results[i] for i in sorted(results)]


def started_not_finished(checks: list[Check], events: list[dict[str, Any]]) -> Check | None:
    started = [int(e["index"]) for e in events if e.get("event") == "start"]
    finished = {int(e["index"]) for e in events if e.get("event") == "result"}
    unfinished = [i for i in started if i not in finished and 0 <= i < len(checks)]
    return checks[unfinished[-1]] if unfinished else None
