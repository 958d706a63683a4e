"""What the provider webhooks do once a request's signature is verified: apply Twilio's status
callbacks and inbound SMS and SendGrid's events to the ledger (``outreach.dispatch.callbacks``);
and the connection each provider's secret is read from."""

from __future__ import annotations

from contact_channels.credentials import ConnectionInfo
from contact_channels.credentials import get_connection as _get_connection
from outreach.dispatch.callbacks import (
    apply_inbound_sms,
    apply_sendgrid_events,
    apply_twilio_status,
)
from outreach.planning.kinds import channel_settings

__all__ = [
    "apply_inbound_sms", "apply_sendgrid_events", "apply_twilio_status", "conn_id", "connection",
]  # fmt: skip


def connection(conn_id: str) -> ConnectionInfo | None:
    """The Airflow connection ``conn_id`` (a provider's webhook signing secret), or None."""
    return _get_connection(conn_id)


def conn_id(kind: str, default: str) -> str:
    """The Airflow connection of channel ``kind`` (``conn_id`` in config/channels.yaml), else
    ``default``."""
    return str(channel_settings(kind).get("conn_id") or default)
