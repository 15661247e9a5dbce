"""Docstrings: every public function or method of two or more parameters has a Google-style ``Args:``.

Read from the source with `ast` (nothing is imported). Counted parameters exclude ``self`` and ``cls``;
``*args`` and ``**kwargs`` count. Exempt: private modules, classes and functions (a leading underscore;
``__init__`` is checked against its class docstring, which documents the constructor) and ``@overload``
stubs (the implementation carries the docstring).

The ``Args:`` section names every parameter, or, for a method that overrides (or a function that mirrors)
one with the same parameters, is the single line ``Args: as `Base.method`.``; the test then checks that
the named function exists, has a full ``Args:`` section of its own, and takes the same parameters.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "weakreward"

_ARGS = re.compile(r"^(?P<indent>[ \t]*)Args:(?P<rest>.*)$", re.M)
_AS = re.compile(r"^as `(?P<target>[\w.]+)`\.?$")


@dataclass(frozen=True)
class Function:
    """One function or method as the check sees it."""

    where: str  # "path:line"
    module: str  # "weakreward.rollout.engine"
    qualname: str  # "Class.method" or "function"
    params: tuple[str, ...]
    doc: str  # for __init__: its own docstring, then the class docstring
    public: bool


def _is_overload(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "overload") or (isinstance(d, ast.Attribute) and d.attr == "overload")
        for d in fn.decorator_list
    )


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of a module or class body, looking inside ``if`` / ``try`` blocks."""
    for node in body:
        if isinstance(node, ast.If):
            yield from _statements(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            yield from _statements(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                yield from _statements(handler.body)
        else:
            yield node


def functions(source: str, path: str = "<string>", *, public_module: bool = True) -> list[Function]:
    """Every function and method of ``source`` (not nested in a function), ``@overload`` stubs left out."""
    out: list[Function] = []
    module = ".".join(Path(path).with_suffix("").parts).removeprefix("src.").removesuffix(".__init__")

    def visit(body: list[ast.stmt], prefix: str, cls: ast.ClassDef | None, public: bool) -> None:
        for node in _statements(body):
            if isinstance(node, ast.ClassDef):
                visit(node.body, prefix + node.name + ".", node, public and not node.name.startswith("_"))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not _is_overload(node):
                a = node.args
                names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
                names += [f"*{a.vararg.arg}"] if a.vararg else []
                names += [f"**{a.kwarg.arg}"] if a.kwarg else []
                doc = ast.get_docstring(node) or ""
                if node.name == "__init__" and cls is not None:
                    doc += "\n" + (ast.get_docstring(cls) or "")
                out.append(
                    Function(
                        where=f"{path}:{node.lineno}",
                        module=module,
                        qualname=prefix + node.name,
                        params=tuple(n for n in names if n not in ("self", "cls")),
                        doc=doc,
                        public=public and (not node.name.startswith("_") or node.name == "__init__"),
                    )
                )

    visit(ast.parse(source).body, "", None, public_module)
    return out


def _args_block(doc: str) -> tuple[str, str] | None:
    """``(text after "Args:" on its line, the indented lines below it)``, or None without a section."""
    match = _ARGS.search(doc)
    if match is None:
        return None
    indent = len(match["indent"])
    block = []
    for line in doc[match.end() :].splitlines()[1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        block.append(line)
    return match["rest"].strip(), "\n".join(block)


def _documents(block: str, param: str) -> bool:
    """Whether the ``Args:`` block has an entry ``param: ...`` (or ``param (type): ...``)."""
    return re.search(rf"^\s+{re.escape(param)}(\s*\([^)\n]*\))?:", block, re.M) is not None


def problems(sources: Mapping[str, str]) -> list[str]:
    """What is wrong with the docstrings of ``{path: source}``; a path with a part starting ``_`` (other
    than ``__init__.py``) is a private module, checked only as the target of an ``Args: as`` line."""
    everything: list[Function] = []
    for path, source in sources.items():
        private = any(p.startswith("_") and p != "__init__.py" for p in Path(path).parts)
        everything += functions(source, path, public_module=not private)

    def targets(name: str) -> list[Function]:
        """The functions ``name`` names: by qualified name, else by a dotted path ending in it."""
        exact = [f for f in everything if f.qualname == name]
        return exact or [f for f in everything if f".{f.module}.{f.qualname}".endswith("." + name)]

    found: list[str] = []
    for fn in everything:
        if not fn.public or len(fn.params) < 2:
            continue
        label = f"{fn.where} {fn.qualname}"
        section = _args_block(fn.doc)
        if section is None:
            found.append(f"{label}: no Args: section")
            continue
        rest, block = section
        if not rest:
            undocumented = [p for p in fn.params if not _documents(block, p)]
            if undocumented:
                found.append(f"{label}: Args: does not document {', '.join(undocumented)}")
            continue
        ref = _AS.match(rest)
        if ref is None:
            found.append(f"{label}: 'Args: {rest}' is neither a section nor 'Args: as `Base.method`.'")
            continue
        name = ref["target"]
        bases = [t for t in targets(name) if t is not fn]
        if len(bases) != 1:
            many = f"names {len(bases)} functions ({', '.join(b.where for b in bases)}): add its module"
            found.append(f"{label}: Args: as `{name}`, which " + (many if bases else "is not defined in the package"))
            continue
        (base,) = bases
        base_section = _args_block(base.doc)
        if base_section is None or base_section[0]:
            found.append(f"{label}: Args: as `{name}`, which has no full Args: section of its own")
        elif base.params != fn.params:
            found.append(f"{label}: Args: as `{name}`, but it takes {base.params}, this takes {fn.params}")
    return found


def package_sources() -> dict[str, str]:
    """``{path relative to the repository: source}`` of every module of the package."""
    root = PACKAGE.parents[1]
    return {str(f.relative_to(root)): f.read_text(encoding="utf-8") for f in sorted(PACKAGE.rglob("*.py"))}


def test_every_public_function_of_two_or_more_parameters_documents_them_in_args() -> None:
    found = problems(package_sources())
    assert not found, f"{len(found)} docstring(s) without a usable Args: section:\n" + "\n".join(found)


# -- the check itself ----------------------------------------------------------------------------------

_BASE = '''
class Base:
    def compare(self, golds, answers):
        """Compare.

        Args:
            golds: The golds.
            answers: The answers.
        """
'''


def test_a_function_without_args_is_flagged() -> None:
    source = 'def f(a, b):\n    """Does f.\n\n    Returns:\n        A thing.\n    """\n'
    assert problems({"pkg/mod.py": source}) == ["pkg/mod.py:1 f: no Args: section"]


def test_an_args_section_missing_a_parameter_is_flagged() -> None:
    source = 'def f(a, b, *rest, **kw):\n    """Does f.\n\n    Args:\n        a: A.\n        *rest: More.\n    """\n'
    assert problems({"m.py": source}) == ["m.py:1 f: Args: does not document b, **kw"]


def test_a_full_args_section_passes() -> None:
    source = '''
def f(a, b=1, *, c):
    """Does f.

    Args:
        a: A.
        b (int): B.
        c: C.
    """
'''
    assert problems({"m.py": source}) == []


def test_exempt_functions_are_not_flagged() -> None:
    source = """
from typing import overload

def one(x): ...
def _private(a, b): ...
class _Hidden:
    def method(self, a, b): ...
class Public:
    '''A class.

    Args:
        a: A.
        b: B.
    '''
    def __init__(self, a, b): ...
    def __call__(self, a, b): ...
    @classmethod
    def make(cls, a): ...
@overload
def g(a: int, b: int) -> int: ...
@overload
def g(a: str, b: str) -> str: ...
def g(a, b):
    '''G.

    Args:
        a: A.
        b: B.
    '''
"""
    assert problems({"m.py": source}) == []
    assert problems({"pkg/_private.py": "def f(a, b): ..."}) == []
    assert problems({"pkg/__init__.py": "def f(a, b): ..."}) == ["pkg/__init__.py:1 f: no Args: section"]


def test_init_without_args_in_its_class_docstring_is_flagged() -> None:
    source = 'class C:\n    """A class."""\n\n    def __init__(self, a, b): ...\n'
    assert problems({"m.py": source}) == ["m.py:4 C.__init__: no Args: section"]


def test_an_override_may_point_at_its_base() -> None:
    child = '''
class Child(Base):
    def compare(self, golds, answers):
        """Compare, the child's way.

        Args: as `Base.compare`.
        """
'''
    assert problems({"base.py": _BASE, "child.py": child}) == []


def test_a_pointer_to_a_missing_or_different_function_is_flagged() -> None:
    missing = 'def f(golds, answers):\n    """F.\n\n    Args: as `Nowhere.compare`.\n    """\n'
    different = 'def g(gold, answer):\n    """G.\n\n    Args: as `Base.compare`.\n    """\n'
    loose = 'def h(a, b):\n    """H.\n\n    Args: a and b.\n    """\n'
    found = problems({"base.py": _BASE, "m.py": missing + different + loose})
    assert found == [
        "m.py:1 f: Args: as `Nowhere.compare`, which is not defined in the package",
        "m.py:6 g: Args: as `Base.compare`, but it takes ('golds', 'answers'), this takes ('gold', 'answer')",
        "m.py:11 h: 'Args: a and b.' is neither a section nor 'Args: as `Base.method`.'",
    ]


def test_a_pointer_may_name_the_module_when_the_name_is_ambiguous() -> None:
    other = _BASE.replace("The golds.", "Other golds.")
    child = 'def f(golds, answers):\n    """F.\n\n    Args: as `{}`.\n    """\n'
    sources = {"src/pkg/a.py": _BASE, "src/pkg/b.py": other}
    assert problems({**sources, "src/pkg/c.py": child.format("pkg.a.Base.compare")}) == []
    (found,) = problems({**sources, "src/pkg/c.py": child.format("Base.compare")})
    assert found.startswith("src/pkg/c.py:1 f: Args: as `Base.compare`, which names 2 functions")
