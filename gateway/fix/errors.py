"""FIX protocol errors and the SessionRejectReason (373) codes.

Invariants:
- Every fault the codec or the dictionary detects is a ``FixError`` subclass; nothing else
  escapes ``Framer``, ``parse`` or ``Dictionary.validate`` for any input bytes.
- ``RemoteFixError``: the peer sent something FIX forbids. A session answers it with a Reject
  (35=3) carrying ``reject_reason`` (373), ``ref_tag`` (371) and ``str(err)`` as Text (58),
  except ``GarbledMessage``, which a session ignores (no Reject, no sequence number consumed).
- ``LocalFixError``: we tried to send something FIX forbids (a bug on our side).
- The default text of a reason is QuickFIX's wording, so certification scripts match 58= exactly.
"""
from __future__ import annotations

INVALID_TAG_NUMBER = 0
REQUIRED_TAG_MISSING = 1
TAG_NOT_DEFINED_FOR_MSG_TYPE = 2
UNDEFINED_TAG = 3
TAG_WITHOUT_VALUE = 4
VALUE_OUT_OF_RANGE = 5
INCORRECT_DATA_FORMAT = 6
DECRYPTION_PROBLEM = 7
SIGNATURE_PROBLEM = 8
COMPID_PROBLEM = 9
SENDING_TIME_ACCURACY = 10
INVALID_MSGTYPE = 11
XML_VALIDATION = 12
TAG_APPEARS_MORE_THAN_ONCE = 13
TAG_OUT_OF_ORDER = 14
REPEATING_GROUP_FIELDS_OUT_OF_ORDER = 15
INCORRECT_NUM_IN_GROUP = 16
NON_DATA_VALUE_INCLUDES_DELIMITER = 17
OTHER = 99

# QuickFIX's Text (58) for each reason (Session::generateReject), so scripted peers match it.
REJECT_TEXT: dict[int, str] = {
    INVALID_TAG_NUMBER: "Invalid tag number",
    REQUIRED_TAG_MISSING: "Required tag missing",
    TAG_NOT_DEFINED_FOR_MSG_TYPE: "Tag not defined for this message type",
    UNDEFINED_TAG: "Undefined Tag",
    TAG_WITHOUT_VALUE: "Tag specified without a value",
    VALUE_OUT_OF_RANGE: "Value is incorrect (out of range) for this tag",
    INCORRECT_DATA_FORMAT: "Incorrect data format for value",
    DECRYPTION_PROBLEM: "Decryption problem",
    SIGNATURE_PROBLEM: "Signature problem",
    COMPID_PROBLEM: "CompID problem",
    SENDING_TIME_ACCURACY: "SendingTime accuracy problem",
    INVALID_MSGTYPE: "Invalid MsgType",
    XML_VALIDATION: "XML Validation error",
    TAG_APPEARS_MORE_THAN_ONCE: "Tag appears more than once",
    TAG_OUT_OF_ORDER: "Tag specified out of required order",
    REPEATING_GROUP_FIELDS_OUT_OF_ORDER: "Repeating group fields out of order",
    INCORRECT_NUM_IN_GROUP: "Incorrect NumInGroup count for repeating group",
    NON_DATA_VALUE_INCLUDES_DELIMITER: "Non Data value includes field delimiter (SOH character)",
    OTHER: "Other",
}


class FixError(Exception):
    """A FIX protocol fault; the fields are what a Reject (35=3) needs."""

    def __init__(self, text: str, *, reject_reason: int | None = None, ref_tag: int | None = None,
                 ref_msg_type: str | None = None, ref_seq_num: int | None = None):
        super().__init__(text)
        self.text = text
        self.reject_reason = reject_reason
        self.ref_tag = ref_tag
        self.ref_msg_type = ref_msg_type
        self.ref_seq_num = ref_seq_num

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.text!r}, reject_reason={self.reject_reason}, "
                f"ref_tag={self.ref_tag})")


class LocalFixError(FixError):
    """What we tried to send breaks FIX (our bug): never put on the wire."""


class RemoteFixError(FixError):
    """What the peer sent breaks FIX: answered with a Reject."""


class GarbledMessage(RemoteFixError):
    """Bad BodyLength / CheckSum / framing: a session IGNORES it, never rejects it."""


class UnsupportedVersion(RemoteFixError):
    """BeginString differs from the dictionary's: QuickFIX logs out rather than rejects."""


def reject(reason: int, ref_tag: int | None = None, ref_msg_type: str | None = None) -> RemoteFixError:
    """A RemoteFixError with QuickFIX's text for ``reason``."""
    return RemoteFixError(REJECT_TEXT[reason], reject_reason=reason, ref_tag=ref_tag,
                          ref_msg_type=ref_msg_type)
