"""Airflow cluster policy for the scheduler end-to-end test only (on PYTHONPATH there, never in
a deployment): no automatic retries, so an injected failure stays failed until the test
clears it through the REST API, as ops staff would from the UI. The DAG files are unchanged.
"""

from __future__ import annotations

from typing import Any


def task_policy(task: Any) -> None:
    task.retries = 0
