"""scripts/mutate.py makes the mutants it says, one change each, and judges them by the tests."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def mutate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutate", REPO / "scripts" / "mutate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutate"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


SOURCE = '''"""A docstring with 7 in it is left alone."""
LIMIT: int = 7
DAYS = ("mon", "tue")


def f(x: int, names: dict[str, int]) -> bool:
    if not x:
        return False
    return x < LIMIT and x + 1 in names.values()
'''


def test_every_kind_of_mutant_is_made_once_and_annotations_are_left_alone(
    mutate: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "m.py").write_text(SOURCE)
    monkeypatch.setattr(mutate, "ROOT", tmp_path)
    mutants = mutate.mutants_of("m.py")
    described = sorted((m.line, m.description) for m in mutants)
    assert described == sorted([
        (2, "7 -> 8"), (2, "7 -> 6"),
        (3, "element 1 of 2 dropped ('mon')"), (3, "element 2 of 2 dropped ('tue')"),
        (7, "`not` dropped"),
        (8, "False -> True"), (8, "return False -> return None"),
        (9, "return x < LIMIT and x + 1 in names.values() -> return None"),
        (9, "And -> Or"), (9, "Lt -> LtE"), (9, "In -> NotIn"), (9, "Add -> Sub"),
        (9, "1 -> 2"), (9, "1 -> 0"),
    ])  # fmt: skip
    sources = {m.description: mutate.mutated_source(m) for m in mutants}
    assert "if x:" in sources["`not` dropped"]
    assert "x <= LIMIT" in sources["Lt -> LtE"]
    assert "DAYS = ('tue',)" in sources["element 1 of 2 dropped ('mon')"]
    # One change each: every mutant differs from the unparsed original in exactly one line.
    original = ast.unparse(ast.parse(SOURCE)).splitlines()
    for desc, src in sources.items():
        changed = [a for a, b in zip(original, src.splitlines(), strict=True) if a != b]
        assert len(changed) == 1, desc


def test_a_run_reports_caught_and_survived_mutants(
    mutate: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    (tmp_path / "m.py").write_text("def limit() -> int:\n    return max(7, 0)\n")
    (tmp_path / "test_m.py").write_text("from m import limit\n\n\ndef test_limit():\n"
                                        "    assert limit() == 7\n")  # fmt: skip
    monkeypatch.setattr(mutate, "ROOT", tmp_path)
    # Five mutants; this seed's sample of two is the return (caught) and 0 -> -1 (harmless).
    code = mutate.main(["m.py", "--tests", "test_m.py", "--sample", "2", "--seed", "2"])
    out = capsys.readouterr().out
    assert "caught   m.py:2: return max(7, 0) -> return None" in out
    assert "m.py | 2 | 1 | 1 | 50%" in out
    assert "survived:\n  m.py:2: 0 -> -1" in out
    assert code == 1
