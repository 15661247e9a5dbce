"""The documentation site: the API reference covers exactly the public API, the nav holds every page in
the agreed order, and the code on the pages runs and prints what the pages say it prints.

Conventions for code on the pages (docs/**/*.md):

- A ```` ```python ```` block **runs** (the blocks of one page in order, in one namespace, in a
  temporary working directory), unless the line before it is ``<!-- no-run -->`` (for code that trains,
  needs a model or data the reader must supply, or is a fragment) or it carries ``title="file.py"``
  (a file listing: those are run by the tests of the guide that holds them).
- A ```` ```text title="Output" ```` block right after a running block is that block's exact stdout.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import pkgutil
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

import weakreward

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API = DOCS / "api"

PUBLIC_SUBMODULES = (
    "weakreward.data",
    "weakreward.dynamics",
    "weakreward.probes.faithfulness",
    "weakreward.probes.diversity",
    "weakreward.kernels",
    "weakreward.rollout",
    "weakreward.adapters",
)
NAV_ORDER = [
    "Home",
    "Quickstart",
    "Concepts",
    "Reproducing the paper's settings",
    "Matching the paper's code",
    "The paper at small scale",
    "API reference",
]
CONCEPT_ORDER = [
    "Rewards and composition",
    "Verifiers",
    "Noisy rewards",
    "Scarce data",
    "Proxy rewards",
    "Training with GRPOTrainer",
    "Fast CUDA path",
    "Saturation dynamics",
    "Faithfulness and diversity probes",
    "Using weakreward in TRL / verl / OpenRLHF",
]

_DIRECTIVE = re.compile(r"^::: (weakreward(?:\.\w+)*)\s*$", re.M)
_INDEX_ROW = re.compile(r"^\| \[`(\w+)`\]\((\w+\.md)#([\w.]+)\) \|", re.M)


# -- the API reference -------------------------------------------------------------------------------


def directives() -> dict[str, list[str]]:
    """``{page name: [dotted path of each ::: directive]}`` over docs/api/*.md."""
    return {p.name: _DIRECTIVE.findall(p.read_text(encoding="utf-8")) for p in sorted(API.glob("*.md"))}


def resolve(path: str) -> object:
    """The object a dotted ``weakreward...`` path names (module, then attributes)."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def test_every_directive_names_something_that_exists() -> None:
    for page, paths in directives().items():
        for path in paths:
            try:
                resolve(path)
            except (ImportError, AttributeError) as err:
                pytest.fail(f"docs/api/{page}: ::: {path} does not resolve ({err})")


def test_every_public_name_is_documented_in_the_api_reference() -> None:
    documented: dict[str, list[str]] = {}
    for paths in directives().values():
        for path in paths:
            documented.setdefault(path.rsplit(".", 1)[-1], []).append(path)
    for name in weakreward.__all__:
        paths = documented.get(name, [])
        assert any(resolve(p) is getattr(weakreward, name) for p in paths), (
            f"weakreward.{name} has no `::: weakreward.{name}` (or `::: weakreward.<module>.{name}`) in docs/api/"
        )


def test_top_level_directives_name_only_public_names() -> None:
    for page, paths in directives().items():
        for path in paths:
            if path.count(".") == 1 and not _is_module(path):
                assert path.split(".")[1] in weakreward.__all__, (
                    f"docs/api/{page}: ::: {path} is not in weakreward.__all__: export it or document it by its module path"
                )


def _is_module(path: str) -> bool:
    try:
        importlib.import_module(path)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("module", PUBLIC_SUBMODULES)
def test_public_submodules_have_api_pages_covering_their_names(module: str) -> None:
    paths = [p for ps in directives().values() for p in ps]
    assert any(p == module or p.startswith(module + ".") for p in paths), f"no API page documents {module}"
    mod = importlib.import_module(module)
    objects = [resolve(p) for p in paths]
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if not callable(obj):
            continue  # constants (prompt templates, defaults) are described on the pages of what uses them
        covered = any(o is obj for o in objects) or f"{module}.{name}" in paths
        assert covered, f"{module}.{name} (in its __all__) is not documented in docs/api/"


PACKAGES = ["weakreward"] + sorted(m.name for m in pkgutil.walk_packages(weakreward.__path__, "weakreward.") if m.ispkg)


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_stay_the_documented_objects_after_every_submodule_is_imported(package: str) -> None:
    """Importing a submodule binds it on its package: a public function named like its module (a lazily
    imported ``fused_token_stats`` in ``fused_token_stats.py``) would then be the module."""
    pkg = importlib.import_module(package)
    for sub in pkgutil.iter_modules(pkg.__path__):
        with contextlib.suppress(ImportError):  # optional extras (triton, trl)
            importlib.import_module(f"{package}.{sub.name}")
    by_name: dict[str, list[object]] = {}
    for paths in directives().values():
        for path in paths:
            with contextlib.suppress(ImportError, AttributeError):
                by_name.setdefault(path.rsplit(".", 1)[-1], []).append(resolve(path))
    for name in getattr(pkg, "__all__", []):
        try:
            obj = getattr(pkg, name)
        except ImportError:  # a lazily imported optional extra
            continue
        assert not isinstance(obj, types.ModuleType), f"{package}.{name} is a module, not the public object"
        if name[:1].isupper() and not name.isupper():
            assert isinstance(obj, type), f"{package}.{name} should be a class, got {type(obj).__name__}"
        elif not name.isupper():
            assert callable(obj), f"{package}.{name} should be a function, got {type(obj).__name__}"
        if name in by_name:
            assert any(o is obj for o in by_name[name]), f"{package}.{name} is not the object docs/api/ documents"


def index_rows() -> list[tuple[str, str, str]]:
    """``(name, page, anchor)`` of each row of the public-name table in docs/api/index.md."""
    return _INDEX_ROW.findall((API / "index.md").read_text(encoding="utf-8"))


def test_all_equals_the_documented_public_names() -> None:
    names = [name for name, _, _ in index_rows()]
    assert len(names) == len(set(names)), "a name is listed twice in docs/api/index.md"
    assert sorted(names) == sorted(weakreward.__all__), (
        f"docs/api/index.md lists {sorted(set(names) - set(weakreward.__all__))} not exported, "
        f"and misses {sorted(set(weakreward.__all__) - set(names))}"
    )
    assert weakreward.__all__ == sorted(weakreward.__all__), "keep weakreward.__all__ sorted"


def test_index_links_point_at_the_directive_of_that_name() -> None:
    pages = directives()
    for name, page, anchor in index_rows():
        assert page in pages, f"docs/api/index.md: {name} links to a missing page {page}"
        assert anchor in pages[page], f"docs/api/index.md: {page} has no `::: {anchor}` for {name}"
        assert resolve(anchor) is getattr(weakreward, name)


# -- the site's structure ----------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """mkdocs.yml may hold ``!!python/name:`` tags; read them as plain strings."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: str(node.value))


def nav() -> list:
    return yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)["nav"]


def _pages(entries: list) -> list[str]:
    out = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        out += _pages(value) if isinstance(value, list) else [value]
    return out


def test_nav_follows_the_agreed_order() -> None:
    top = [next(iter(e)) for e in nav()]
    assert top == NAV_ORDER
    concepts = [next(iter(e)) for e in next(e["Concepts"] for e in nav() if "Concepts" in e)]
    assert concepts == CONCEPT_ORDER


def test_every_page_is_in_the_nav() -> None:
    listed = set(_pages(nav()))
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert on_disk - listed == set(), "pages missing from mkdocs.yml nav"
    assert listed - on_disk == set(), "nav entries without a page"


# -- code on the pages -------------------------------------------------------------------------------

_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```\s*$", re.M | re.S)


def code_blocks(text: str) -> list[dict]:
    """The page's fenced blocks: info string, code, whether it runs, and its expected output."""
    blocks = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()].rstrip().splitlines()
        blocks.append(
            {
                "info": m.group(1).strip(),
                "code": m.group(2),
                "marker": before[-1].strip() if before else "",
                "end": m.end(),
                "start": m.start(),
            }
        )
    out = []
    for i, b in enumerate(blocks):
        if not b["info"].startswith("python"):
            continue
        runs = b["marker"] != "<!-- no-run -->" and "title=" not in b["info"]
        expected = None
        if i + 1 < len(blocks):
            nxt = blocks[i + 1]
            if (
                nxt["info"].startswith("text")
                and 'title="Output"' in nxt["info"]
                and not text[b["end"] : nxt["start"]].strip()
            ):
                expected = nxt["code"]
        out.append({"code": b["code"], "runs": runs, "expected": expected})
    return out


def runnable_pages() -> list[Path]:
    return [p for p in sorted(DOCS.rglob("*.md")) if any(b["runs"] for b in code_blocks(p.read_text(encoding="utf-8")))]


def test_output_blocks_follow_running_blocks() -> None:
    for page in DOCS.rglob("*.md"):
        for block in code_blocks(page.read_text(encoding="utf-8")):
            if block["expected"] is not None:
                assert block["runs"], f"{page}: an Output block follows a block that does not run"


@pytest.mark.parametrize("page", runnable_pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_code_runs_and_prints_what_the_page_shows(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # The blocks run as a registered module, as a script would: classes defined there (a pydantic
    # `reward_dataclass`) resolve their annotations through sys.modules.
    module = types.ModuleType("__docs__")
    monkeypatch.setitem(sys.modules, "__docs__", module)
    namespace: dict = module.__dict__
    try:
        for n, block in enumerate(b for b in code_blocks(page.read_text(encoding="utf-8")) if b["runs"]):
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                try:
                    exec(compile(block["code"], f"{page.name}[block {n}]", "exec"), namespace)  # noqa: S102 - our own docs
                except Exception as err:  # noqa: BLE001 - say which block failed
                    pytest.fail(
                        f"{page.relative_to(ROOT)} block {n} raised {type(err).__name__}: {err}\n{block['code']}"
                    )
            if block["expected"] is not None:
                got = [line.rstrip() for line in stdout.getvalue().rstrip().splitlines()]
                want = [line.rstrip() for line in block["expected"].rstrip().splitlines()]
                assert got == want, (
                    f"{page.relative_to(ROOT)} block {n}: the page shows\n{block['expected']}\nbut it prints\n{stdout.getvalue()}"
                )
    finally:
        for value in list(namespace.values()):
            close = getattr(value, "close", None)
            if callable(close) and type(value).__module__.startswith("weakreward"):
                close()


# -- the newcomer's path: Home → Quickstart → a finished noisy-reward run ---------------------------


def _quickstart() -> str:
    return (DOCS / "quickstart.md").read_text(encoding="utf-8")


def test_quickstart_recipe_is_the_example_config() -> None:
    block = re.search(r'```yaml title="noisy.yaml"\n(.*?)^```', _quickstart(), re.S | re.M)
    assert block, "docs/quickstart.md lost its noisy.yaml block"
    config = yaml.safe_load((ROOT / "examples" / "configs" / "noisy_arithmetic.yaml").read_text(encoding="utf-8"))
    assert yaml.safe_load(block.group(1)) == config
    assert "weakreward train noisy.yaml" in _quickstart()


def test_quickstart_python_run_trains_with_a_tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's training block, with the embedded model swapped for a tiny random one and the run shrunk."""
    from weakreward.models import char_tokenizer, tiny_llama

    section = _quickstart().split("## The same run in Python", 1)[1]
    code = next(b["code"] for b in code_blocks(section))
    swaps = {
        "steps=30, prompts_per_step=4, group_size=8, max_new_tokens=24,": "steps=1, prompts_per_step=2, group_size=2, max_new_tokens=6, progress=False,",
        '"smollm2-gguf",': "tiny_model,",
        "config=config,": "config=config, tokenizer=tiny_tokenizer,",
        "arithmetic_problems(16, seed=1)": "arithmetic_problems(2, seed=1)",
    }
    for old, new in swaps.items():
        assert old in code, f"the quickstart's training block changed: {old!r} is gone; update this test"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    tokenizer = char_tokenizer()
    namespace = {"tiny_model": tiny_llama(tokenizer), "tiny_tokenizer": tokenizer, "__name__": "__docs__"}
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exec(compile(code, "quickstart.md[train]", "exec"), namespace)  # noqa: S102 - our own docs
    namespace["verifier"].close()
    rows = [
        json.loads(line) for line in (tmp_path / "runs" / "noisy_arithmetic" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [0, 1]  # 0: the evaluation before training
    assert {"reward/mean", "reward/flipped", "monitor/true/mean", "eval/avg@4"} <= set(rows[1])
    assert len(stdout.getvalue().split()) == 2  # the two numbers it prints
