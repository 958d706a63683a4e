"""Loads ``scripts/airflow_stack.py`` (a script, not a package) for the tests that start a
real Airflow."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def load_stack_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "airflow_stack", REPO / "scripts/airflow_stack.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: its dataclasses resolve their annotations through sys.modules.
    sys.modules.setdefault("airflow_stack", module)
    spec.loader.exec_module(module)
    return sys.modules["airflow_stack"]
