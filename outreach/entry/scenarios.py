"""Compliance scenarios: a portfolio, a day and the verdicts expected, checked end to end.

A scenario is one JSON file (format: docs/plan-and-explain.md). Running it imports its records
into a fresh database in a temporary directory with ``outreach import``, plans the day with
``outreach plan --json``, explains the accounts it names with ``outreach explain --json``, and
compares what it expects with what came out: only the fields a scenario names are compared.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from outreach.entry.cli_accounts import add_explain, add_import, add_plan
from outreach.entry.cli_common import run

PLAN_KEYS = ("account_id", "action")


class ScenarioError(ValueError):
    """The scenario file itself is wrong (not a wrong verdict)."""


@dataclass
class ScenarioResult:
    name: str
    mismatches: list[str] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _commands() -> argparse.ArgumentParser:
    """The three ``outreach`` commands a scenario runs (import, plan, explain), with the same
    arguments and the same exit codes as ``outreach.entry.cli``'s, which runs scenarios itself
    (``outreach scenario``) and so is not imported here."""
    parser = argparse.ArgumentParser(prog="outreach")
    sub = parser.add_subparsers(dest="command", required=True)
    add_import(sub)
    add_plan(sub)
    add_explain(sub)
    return parser


def _cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(_commands(), args)
    return code, out.getvalue(), err.getvalue()


def load_scenario(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: (top level): must be an object")
    for name in ("as_of", "records"):
        if name not in data:
            raise ScenarioError(f"{path}: {name}: missing")
    if not isinstance(data["records"], list) or not data["records"]:
        raise ScenarioError(f"{path}: records: must be a non-empty list of import records")
    for i, item in enumerate(data.get("expect", [])):
        if not all(k in item for k in PLAN_KEYS):
            raise ScenarioError(f"{path}: expect[{i}]: needs account_id and action")
    for i, item in enumerate(data.get("explain", [])):
        if not all(k in item for k in (*PLAN_KEYS, "rule")):
            raise ScenarioError(f"{path}: explain[{i}]: needs account_id, action and rule")
    return data


def _subset_mismatch(where: str, expected: Any, actual: Any) -> list[str]:
    """Differences where ``expected`` (a subset: dicts compare only the keys they name)
    differs from ``actual``."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        for k, v in expected.items():
            if k not in actual:
                out.append(f"{where}.{k}: missing (expected {v!r})")
            else:
                out += _subset_mismatch(f"{where}.{k}", v, actual[k])
        return out
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


def run_scenario(path: Path) -> ScenarioResult:
    """Run one scenario file in a throwaway data directory; never touches the real one."""
    spec = load_scenario(path)
    result = ScenarioResult(name=spec.get("name") or path.stem)
    with tempfile.TemporaryDirectory(prefix="outreach-scenario-") as tmp:
        data = Path(tmp)
        portfolio = data / "portfolio.jsonl"
        portfolio.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in spec["records"]),
            encoding="utf-8",
        )
        policy = data / "policy.yaml"
        policy.write_text(json.dumps({"role": spec.get("role", "collector")}), encoding="utf-8")
        env = {
            "OUTREACH_DATA_DIR": str(data),
            "OUTREACH_DATABASE_URL": f"sqlite:///{data / 'outreach.db'}",
            "OUTREACH_OUTBOX_URL": f"sqlite:///{data / 'outbox.db'}",
            "OUTREACH_POLICY": str(policy),
        }
        ladder = ["--ladder", str(path.parent / spec["ladder"])] if spec.get("ladder") else []
        with _environment(env):
            code, out, err = _cli(["import", str(portfolio), "--rejects", str(data / "rej.jsonl")])
            rejects = (data / "rej.jsonl").read_text(encoding="utf-8").strip()
            if code != 0 or rejects:
                result.mismatches.append(f"import: exit {code}; rejects: {rejects or err}")
                return result
            code, out, err = _cli(["plan", "--as-of", spec["as_of"], "--json", *ladder])
            if code != 0:
                result.mismatches.append(f"plan: exit {code}: {err.strip()}")
                return result
            result.plan = [json.loads(line) for line in out.splitlines() if line.strip()]
            by_key = {(d["account_id"], d["action"]): d for d in result.plan}
            for i, want in enumerate(spec.get("expect", [])):
                got = by_key.get((want["account_id"], want["action"]))
                where = f"expect[{i}] {want['account_id']}/{want['action']}"
                if got is None:
                    result.mismatches.append(f"{where}: not in the plan")
                    continue
                result.mismatches += _subset_mismatch(where, want, got)
            explained: dict[str, dict[str, Any]] = {}
            for i, want in enumerate(spec.get("explain", [])):
                ref = want["account_id"]
                if ref not in explained:
                    code, out, err = _cli(
                        ["explain", ref, "--as-of", spec["as_of"], "--json", *ladder]
                    )
                    if code != 0:
                        result.mismatches.append(f"explain {ref}: exit {code}: {err.strip()}")
                        continue
                    explained[ref] = json.loads(out)
                where = f"explain[{i}] {ref}/{want['action']}/{want['rule']}"
                action = next(
                    (a for a in explained[ref]["actions"] if a["action"] == want["action"]), None
                )
                if action is None or "decision" not in action:
                    result.mismatches.append(f"{where}: action not due")
                    continue
                rules = {r["rule"]: r for r in action["decision"]["rules"]}
                if want["rule"] not in rules:
                    result.mismatches.append(f"{where}: rule not evaluated")
                    continue
                expected = {k: v for k, v in want.items() if k not in (*PLAN_KEYS, "rule")}
                result.mismatches += _subset_mismatch(where, expected, rules[want["rule"]])
    return result
