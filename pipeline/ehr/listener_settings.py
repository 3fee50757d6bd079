"""The `hl7_listener:` section of config.yaml: where ADT messages from registration arrive.

Kept apart from the listener so that loading the configuration does not import the HL7 stack.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MergePolicy = Literal["review", "verified", "trust"]


class HL7TLSSettings(BaseModel):
    """MLLP over TLS; the sender must present a certificate signed by ``client_ca``."""

    model_config = ConfigDict(extra="forbid")

    cert: Path = Field(description="the listener's certificate chain (PEM)")
    key: Path = Field(description="its private key (PEM, readable by the service user only)")
    client_ca: Path = Field(description="CA certificate(s) (PEM) that sign the interface engine's client certificate")


class HL7ListenerSettings(BaseModel):
    """`medarchive hl7 listen`, also started by `medarchive watch` when enabled."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="start the listener inside `medarchive watch`")
    host: str = Field("127.0.0.1", description="address to listen on; the interface engine connects here")
    port: int = Field(2575, ge=0, le=65535, description="MLLP port (0 = any free port, for tests)")
    tls: HL7TLSSettings | None = Field(None, description="MLLP over TLS with client certificates")
    allow_plaintext: bool = Field(
        False, description="allow plain TCP on an address other than loopback (only on a network you trust)"
    )
    allowed_sources: list[str] = Field(
        default_factory=list, description="addresses or CIDR networks that may connect; empty = any"
    )
    allowed_facilities: list[str] = Field(
        default_factory=list, description="MSH-4 sending facilities accepted; empty = any"
    )
    assigning_authority: str | None = Field(
        None, description="take the MRN from the PID-3 / MRG-1 repetition of this assigning authority (CX-4)"
    )
    receiving_application: str = Field("MEDARCHIVE", description="MSH-3 of our acknowledgements")
    merge_policy: MergePolicy = Field(
        "verified",
        description="A40/A37: review = every one waits for a clerk; verified = applied when the patient index agrees; trust = always applied",
    )
    max_message_kb: int = Field(1024, ge=16, description="larger messages are refused while they are read")
    max_connections: int = Field(32, ge=1, description="connections served at once; more are closed at accept")
    max_connections_per_source: int = Field(4, ge=1, description="connections at once from one address")
    idle_timeout_seconds: float = Field(300, gt=0, description="a connection with no message for this long is closed")
    read_timeout_seconds: float = Field(
        30, gt=0, description="a message must arrive whole within this long of its first byte"
    )
    tls_handshake_timeout_seconds: float = Field(10, gt=0, description="time allowed for the TLS handshake")

    @field_validator("allowed_sources")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for source in value:
            try:
                ipaddress.ip_network(source, strict=False)
            except ValueError:
                raise ValueError(f"{source!r} is not an IP address or CIDR network (e.g. 10.1.2.0/24)") from None
        return value

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(s, strict=False) for s in self.allowed_sources]

    def loopback_only(self) -> bool:
        """Whether the listening address reaches this machine only."""
        if self.host in ("localhost", "ip6-localhost"):
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name: it may resolve to any interface

    def transport(self) -> str:
        """How the feed is carried, as `status` says it."""
        if self.tls is not None:
            return "TLS with client certificates"
        if self.loopback_only():
            return "plain TCP on loopback"
        return "plain TCP (hl7_listener.allow_plaintext)" if self.allow_plaintext else "refused: plain TCP off loopback"
