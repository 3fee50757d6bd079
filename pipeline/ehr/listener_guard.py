"""Who may talk to the ADT listener, and how much: TLS, the source allow-list, connection caps.

Also ``CauseLog``: a flood (a thousand refused connections, EMFILE at every accept) is
logged once when its cause first appears and then as one line with a count per
interval, never a line or a traceback per connection.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import threading
import time
from collections import Counter
from pathlib import Path

from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.ehr.listener_settings import HL7ListenerSettings

_SUMMARY_SECONDS = 60.0


class ListenerError(MedarchiveError):
    """The listener cannot start (the message says what to fix)."""


def check_transport(settings: HL7ListenerSettings) -> None:
    """Refuse plain TCP beyond loopback unless the site said so in as many words."""
    if settings.tls is None and not settings.loopback_only() and not settings.allow_plaintext:
        raise ListenerError(
            f"hl7_listener.host {settings.host} is reachable from other machines and hl7_listener.tls is not set: "
            "configure tls (cert, key, client_ca) so that only the interface engine can send, "
            "or set hl7_listener.allow_plaintext: true on a network you trust"
        )


def server_tls_context(config: Config) -> ssl.SSLContext | None:
    """The server side of MLLP over TLS: TLS 1.2 or later, a client certificate required."""
    tls = config.hl7_listener.tls
    if tls is None:
        return None
    cert, key, client_ca = (config.resolve(p) for p in (tls.cert, tls.key, tls.client_ca))
    if _readable_by_others(key):
        raise ListenerError(f"hl7_listener.tls.key: {key} is readable by other users; chmod 600 it")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ListenerError(f"hl7_listener.tls: cannot load cert {cert} with key {key}: {_why(exc)}") from None
    try:
        context.load_verify_locations(cafile=client_ca)
    except (OSError, ssl.SSLError) as exc:
        raise ListenerError(f"hl7_listener.tls.client_ca: cannot load {client_ca}: {_why(exc)}") from None
    return context


def _why(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__


class Gate:
    """Admission of one connection: the allow-list, then the caps overall and per address."""

    def __init__(self, settings: HL7ListenerSettings) -> None:
        self.settings = settings
        self._networks = settings.networks()
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def admit(self, address: str) -> str | None:
        """None when the connection may proceed (and is counted); else the cause of refusal.

        ``release`` must then be called with the same ``address``."""
        ip = _ip(address)
        if self._networks and (ip is None or not any(ip in net for net in self._networks)):
            return "connection from an address not in hl7_listener.allowed_sources"
        address = str(ip) if ip is not None else address
        with self._lock:
            if sum(self._open.values()) >= self.settings.max_connections:
                return f"connection over hl7_listener.max_connections ({self.settings.max_connections})"
            if self._open[address] >= self.settings.max_connections_per_source:
                return f"connection over hl7_listener.max_connections_per_source ({self.settings.max_connections_per_source})"
            self._open[address] += 1
        return None

    def release(self, address: str) -> None:
        ip = _ip(address)
        address = str(ip) if ip is not None else address
        with self._lock:
            self._open[address] -= 1
            if self._open[address] <= 0:
                del self._open[address]

    @property
    def open(self) -> int:
        with self._lock:
            return sum(self._open.values())


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The peer's address, an IPv4 client seen through an IPv6 socket as plain IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class CauseLog:
    """Log each cause once, then how often it recurred, at most once per interval."""

    def __init__(self, logger: logging.Logger, interval: float = _SUMMARY_SECONDS) -> None:
        self.logger = logger
        self.interval = interval
        self._pending: Counter[str] = Counter()
        self._seen: set[str] = set()
        self._last_summary = time.monotonic()
        self._lock = threading.Lock()

    def note(self, cause: str, level: int = logging.WARNING) -> None:
        with self._lock:
            first = cause not in self._seen
            self._seen.add(cause)
            if not first:
                self._pending[cause] += 1
        if first:
            self.logger.log(level, "HL7 listener: %s (repeats are counted, not logged)", cause)

    def flush(self, *, force: bool = False) -> None:
        """The counts since the last summary, when the interval is over (or ``force``)."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last_summary < self.interval:
                return
            self._last_summary = now
            pending, self._pending = self._pending, Counter()
        for cause, count in sorted(pending.items()):
            self.logger.warning("HL7 listener: %s: %d more", cause, count)


def _readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & 0o077)
    except OSError:
        return False
