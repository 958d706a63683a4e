"""The ops console as an Airflow plugin: ``outreach.entry.console.create_app`` under
``/outreach-console``, behind Airflow's authentication, with its pages in Airflow's navigation.

A separate plugin from ``outreach_plugin.py`` on purpose: the webhooks there must stay open to
providers (their signatures authenticate them), while every console route requires an Airflow
user. See docs/console.md.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from outreach.entry.console import ROUTE_PREFIX, create_app

CATEGORY = "Outreach"

# Each view opens the console page inside Airflow's UI (``url_route``: /plugin/<route>); the
# page is same-origin, so the UI's session cookie authenticates it.
CONSOLE_VIEWS = [
    {"name": "Account timeline", "href": f"{ROUTE_PREFIX}/timeline",
     "url_route": "outreach-timeline"},
    {"name": "Suppressions", "href": f"{ROUTE_PREFIX}/suppressions",
     "url_route": "outreach-suppressions"},
    {"name": "Uncertain and failed", "href": f"{ROUTE_PREFIX}/open-contacts",
     "url_route": "outreach-open-contacts"},
    {"name": "Ladder", "href": f"{ROUTE_PREFIX}/ladder", "url_route": "outreach-ladder"},
    {"name": "Experiments", "href": f"{ROUTE_PREFIX}/experiments",
     "url_route": "outreach-experiments"},
]


class OutreachConsolePlugin(AirflowPlugin):
    name = "outreach_console"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": ROUTE_PREFIX, "name": "Outreach console"},
    ]
    external_views = [
        {**view, "destination": "nav", "category": CATEGORY} for view in CONSOLE_VIEWS
    ]
