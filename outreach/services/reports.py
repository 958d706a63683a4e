"""The day's figures for ``outreach summary`` and the plan's decisions for ``outreach plan
--json`` (``outreach.operations.reporting``)."""

from __future__ import annotations

from outreach.operations.reporting import day_summary, format_summary, plan_decisions

__all__ = ["day_summary", "format_summary", "plan_decisions"]
