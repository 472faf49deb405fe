"""Metrics of the realtime inbox, served by every API process on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONNECTIONS = Gauge("tidings_inbox_connections", "Inbox websocket connections open on this process")
EVENTS_SENT = Counter("tidings_inbox_events_sent_total", "Inbox events sent to websocket clients", ["type"])
CLIENTS_DROPPED = Counter(
    "tidings_inbox_clients_dropped_total", "Websocket clients closed for falling too far behind (they resume)"
)
HUB_RECONNECTS = Counter("tidings_inbox_hub_reconnects_total", "Times this process re-opened its Redis pub/sub")
