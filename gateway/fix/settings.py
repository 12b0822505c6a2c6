"""SessionSettings: everything one FIX session needs to know about itself.

Frozen and strict (``extra="forbid"``): a typo in a config file is an error naming the
field, never a silently ignored switch. The names follow QuickFIX's settings where one
exists (``ResetOnLogon`` -> ``reset_on_logon``, ``MaxLatency`` -> ``max_latency_s``, ...),
so a quickfix config maps one to one (see ``quickfix_backend.py``).

Invariants: ``key`` is unique per (begin_string, sender, target) and is the store's name.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.fix.schedule import SessionSchedule


class SessionSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    begin_string: str = "FIX.4.4"
    sender_comp_id: str = Field(min_length=1)
    target_comp_id: str = Field(min_length=1)
    role: Literal["acceptor", "initiator"]

    heartbeat_s: int = Field(30, ge=0)        # initiator sends it; acceptor takes the peer's 108
    logon_timeout_s: float = Field(10, gt=0)
    logout_timeout_s: float = Field(2, gt=0)

    reset_on_logon: bool = False
    reset_on_logout: bool = False
    reset_on_disconnect: bool = False
    refresh_on_logon: bool = False

    validate_messages: bool = Field(True, alias="validate")   # dictionary validation of input
    validate_user_defined_fields: bool = True
    validate_fields_out_of_order: bool = True
    validate_fields_have_values: bool = True
    allow_unknown_msg_fields: bool = False

    check_comp_id: bool = True
    check_latency: bool = True
    max_latency_s: float = Field(120, gt=0)
    timestamp_precision: Literal[0, 3, 6] = 3

    # QuickFIX's ResendRequestChunkSize: our own ResendRequests ask for at most this many
    # messages at a time (0 = EndSeqNo 0, "everything"). Answers to the peer's requests are
    # always streamed from the store, max_resend_bytes at a time.
    resend_chunk_size: int = Field(0, ge=0)
    max_resend_bytes: int = Field(8 << 20, ge=1024)
    persist_messages: bool = True
    logon_fields: tuple[tuple[int, str], ...] = ()   # e.g. Username 553 / Password 554 (initiator)
    send_redundant_resend_requests: bool = False
    max_out_of_order: int = Field(10000, ge=0)      # messages queued ahead of a gap (capped)
    dictionary_path: str | None = None              # default fix_specs/FIX44.xml
    # When the session runs (QuickFIX StartTime/EndTime/StartDay/EndDay/TimeZone/LogonTime/
    # LogoutTime, see schedule.py). None: always (QuickFIX's NonStopSession); the store is
    # reset (seq 1) when a new session instance starts.
    schedule: SessionSchedule | None = None

    @field_validator("sender_comp_id", "target_comp_id", "begin_string")
    @classmethod
    def _no_soh(cls, v: str) -> str:
        # A SOH or '=' in a header value would corrupt every message we frame.
        if "\x01" in v or "=" in v:
            raise ValueError("must not contain SOH or '='")
        return v

    @property
    def validate(self) -> bool:  # type: ignore[override]  (the README's name for the switch)
        return self.validate_messages

    @property
    def key(self) -> str:
        return f"{self.begin_string}:{self.sender_comp_id}->{self.target_comp_id}"
