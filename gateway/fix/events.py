"""What a Session tells its driver (h11's ``_events.py``).

Small frozen, keyword-only, slotted dataclasses; ``NEED_DATA`` is a sentinel class as in h11.
The driver loops ``while (ev := session.next_event()) is not NEED_DATA`` and, after every
batch, writes ``session.data_to_send()``. On ``Disconnect`` it writes what is left in
``data_to_send()`` (a final Logout, say) and then closes the socket.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Message = Any   # gateway.fix.codec.Message (kept loose: events must not import the codec)


class NEED_DATA:  # noqa: N801  (a sentinel, named like h11's)
    """Nothing more to do until receive_data() or on_timer()."""

    def __init__(self) -> None:  # pragma: no cover
        raise TypeError("NEED_DATA is a sentinel, not a value")


@dataclass(frozen=True, kw_only=True, slots=True)
class Connected:
    """connection_made() ran: the initiator's Logon is queued, or the acceptor waits for one."""
    session_key: str


@dataclass(frozen=True, kw_only=True, slots=True)
class LogonReceived:
    """Acceptor: a valid Logon arrived. Nothing is answered until the driver calls
    accept_logon() or refuse_logon(text); no further input is processed meanwhile."""
    message: Message


@dataclass(frozen=True, kw_only=True, slots=True)
class LoggedOn:
    session_key: str
    reset: bool            # sequence numbers were reset (141=Y or reset_on_logon)


@dataclass(frozen=True, kw_only=True, slots=True)
class AppMessageReceived:
    message: Message
    poss_dup: bool         # 43=Y: a resend the application may already have seen


# The frozen dataclass __init__ sets each field through object.__setattr__ (~3 us here);
# writing the slots through their descriptors builds the identical, still frozen, event in
# a tenth of that. One of these per application message received: the hot path, where
# Session builds it with these three (session.py, its fast path).
_new_app = AppMessageReceived.__new__
_set_message = AppMessageReceived.message.__set__          # type: ignore[attr-defined]
_set_poss_dup = AppMessageReceived.poss_dup.__set__        # type: ignore[attr-defined]


@dataclass(frozen=True, kw_only=True, slots=True)
class AdminMessageReceived:
    """Every admin message once processed (Heartbeats with 112 answer our probes)."""
    message: Message


@dataclass(frozen=True, kw_only=True, slots=True)
class RejectSent:
    ref_seq_num: int | None
    reason: int
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class GapDetected:
    """We sent a ResendRequest for begin..end (end 0 = up to the newest)."""
    begin: int
    end: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ResendCompleted:
    """The gap of the last GapDetected is filled: input is in sequence again."""


@dataclass(frozen=True, kw_only=True, slots=True)
class LoggedOut:
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Disconnect:
    """Write data_to_send() one last time, then close the socket now."""
    reason: str


Event = (Connected | LogonReceived | LoggedOn | AppMessageReceived | AdminMessageReceived
         | RejectSent | GapDetected | ResendCompleted | LoggedOut | Disconnect)
