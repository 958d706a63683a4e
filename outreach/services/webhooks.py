"""What the provider webhooks do once a request's signature is verified: apply Twilio's status
callbacks and inbound SMS and SendGrid's events to the ledger (``outreach.dispatch.callbacks``);
and the connection each provider's secret is read from."""

from __future__ import annotations

from outreach.dispatch.callbacks import (
    apply_inbound_sms,
    apply_sendgrid_events,
    apply_twilio_status,
)
from outreach.planning.kinds import channel_settings

__all__ = ["apply_inbound_sms", "apply_sendgrid_events", "apply_twilio_status", "conn_id"]


def conn_id(kind: str, default: str) -> str:
    """The Airflow connection of channel ``kind`` (``conn_id`` in config/channels.yaml), else
    ``default``."""
    return str(channel_settings(kind).get("conn_id") or default)
