"""The `hl7_listener:` section of config.yaml: where ADT messages from registration arrive.

Kept apart from the listener so that loading the configuration does not import the HL7 stack.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HL7ListenerSettings(BaseModel):
    """`medarchive hl7 listen`, also started by `medarchive watch` when enabled."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="start the listener inside `medarchive watch`")
    host: str = Field("127.0.0.1", description="address to listen on; the interface engine connects here")
    port: int = Field(2575, ge=0, le=65535, description="MLLP port (0 = any free port, for tests)")
    allowed_facilities: list[str] = Field(
        default_factory=list, description="MSH-4 sending facilities accepted; empty = any"
    )
    assigning_authority: str | None = Field(
        None, description="take the MRN from the PID-3 / MRG-1 repetition of this assigning authority (CX-4)"
    )
    receiving_application: str = Field("MEDARCHIVE", description="MSH-3 of our acknowledgements")
    max_message_kb: int = Field(1024, ge=16, description="larger messages are refused")
