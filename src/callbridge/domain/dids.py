"""DIDs: the public numbers a carrier delivers over the SIP trunk, each owned by one tenant.

A DID maps the number the carrier puts in the INVITE's To (e.g. ``+14155550100``) to a number
*inside* its tenant: an extension or a queue extension. The DID number is unique across the
whole platform, so an inbound call needs no other hint to find its tenant.

Normalisation (:func:`normalise_did`): spaces, dashes, dots and parentheses are removed and a
leading ``+`` is kept; nothing else is rewritten. ``+14155550100`` and ``14155550100`` are
therefore *different* DIDs: carriers differ in whether they send the ``+`` (or a national
``4155550100``), and guessing a country code would route one tenant's calls to another. An
operator whose carrier is inconsistent assigns each form it sends. Stored numbers are always
normalised; a To user part matches a DID exactly or after the same normalisation.

The target may not be an external number: a DID that forwards to the outside world turns the
platform into a transit relay (trunk in, trunk out) with the tenant's caller id and the
platform's bill, and a target that routes back to the trunk loops. Forwarding belongs in a queue's
overflow, where the tenant's limits and the CDR see it.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from .errors import Invalid
from .numbers import check_extension_number

DID_MIN_PRIORITY, DID_MAX_PRIORITY = 0, 9  # (#4) as a waiting call's priority
_SEPARATORS = re.compile(r"[\s\-.()]")
_DID = re.compile(r"^\+?[0-9]{3,15}$")


def normalise_did(number: str) -> str:
    """``number`` without spaces, dashes, dots and parentheses (a leading ``+`` stays)."""
    return _SEPARATORS.sub("", number)


def check_did_number(number: str) -> str:
    """The normalised DID number, or :class:`Invalid` (``did_number_malformed``)."""
    normal = normalise_did(number)
    if not _DID.fullmatch(normal):
        raise Invalid(
            f"DID number {number!r} must be 3 to 15 digits with an optional leading +",
            code="did_number_malformed",
            number=number,
        )
    return normal


def check_did_target(number: str) -> str:
    """A DID target is an extension number of the tenant (an extension or a queue's)."""
    try:
        return check_extension_number(number)
    except Invalid:
        raise Invalid(
            f"a DID points to an extension or queue number of its tenant, not {number!r}",
            code="did_target_invalid",
            target=number,
        ) from None


class Did(BaseModel):
    id: str
    tenant_id: str
    number: str  # normalised, unique on the platform
    target: str  # an extension number or a queue (alternate) extension of the tenant
    description: str = Field(default="", max_length=200)
    # (#4) callers arriving through this DID enter a queue with this priority (higher first);
    # documents stored before it load as 0
    priority: int = Field(default=0, ge=DID_MIN_PRIORITY, le=DID_MAX_PRIORITY)


def find_did(dids: dict[str, Did], dialled: str) -> Did | None:
    """The DID a To user part ``dialled`` is for: an exact match first, then normalised.

    ``dids`` is keyed by (normalised) number.
    """
    return dids.get(dialled) or dids.get(normalise_did(dialled))
