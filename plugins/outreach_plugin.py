"""The outreach Airflow plugin: the provider webhooks, served by Airflow 3's api-server.

Mounted at ``/outreach`` (so ``/outreach/webhooks/twilio/status`` and so on); the app itself is
``outreach.entry.webhooks_app.create_app``. Plugin FastAPI apps are not behind Airflow's login: every
route verifies the provider's signature instead. See docs/webhooks.md.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from outreach.entry.webhooks_app import MOUNT_PATH, create_app


class OutreachPlugin(AirflowPlugin):
    name = "outreach"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": MOUNT_PATH, "name": "Outreach webhooks"},
    ]
