"""The SIP switch: a B2BUA implementing :class:`~callbridge.ports.switch.Switch` over real SIP/RTP.

Theory of operation
-------------------
Every leg is one SIP dialog plus one media-engine leg (``media.allocate(leg_id)``); the engine
relays, mixes, plays music and records, so ``bridge``/``hold``/``mute``/``music``/``record``/
``send_dtmf`` map 1:1 onto :class:`~callbridge.media.port.MediaEngine` calls. The class is
assembled from mixins over :class:`~.base.SwitchBase` (shared state and helpers), one module per
concern: :mod:`.outgoing`, :mod:`.incoming`, :mod:`.reinvite`, :mod:`.refer`; :mod:`.switch`
holds the lifecycle, hangup and media commands, :mod:`.legs` the per-leg state.

Outgoing legs (:mod:`.outgoing`)
    An extension number goes to *every* live registrar binding of the extension's SIP username
    (``username_for(tenant_id, number)``), in parallel (one :class:`~.legs.Fork` each, same
    Call-ID and From tag, own branch): each INVITE's Request-URI is the binding's contact and it
    is sent to ``binding.source`` (the address the REGISTER came from, which is right behind NAT),
    over that transport. An external number goes to ``trunk`` (``sip:<number>@<trunk
    host:port>``), one fork. The INVITEs carry the same SDP offer for the leg's media address.
    ``180``/``183`` from any fork -> ``RINGING`` (once); the first ``2xx`` wins: ACK, the other
    forks are CANCELled (a 2xx crossing that CANCEL is ACKed and BYEd), the dialog is confirmed,
    ``media.set_remote`` from the answer, ``ANSWERED``. When every fork failed -> ``HUNGUP`` with
    :func:`~callbridge.sip.causes.cause_of_response` of the best failure (a 6xx, else 486, else
    another 4xx but 408/487, else the first; a 408/503 without any provisional counts as
    synthetic: ``failed``). A ``401``/``407`` is answered once with
    the trunk credentials (``trunk_username``/``trunk_password``; SHA-256 or MD5 as challenged,
    :func:`~callbridge.sip.digest.answer_challenges`): the INVITE is sent again with CSeq + 1 and
    the same Call-ID and tags; without credentials, or on a second challenge, the leg ends
    ``HUNGUP(rejected)``. The ring timer (``DialRequest.timeout_s``) CANCELs the INVITE and the
    487 becomes ``HUNGUP(no_answer)``; a 2xx that crosses the CANCEL is ACKed and BYEd. No usable
    target (no binding, no trunk, unknown username) -> ``HUNGUP(failed)``, scheduled on the clock
    at delay 0 like the simulated switch.

Incoming legs (:mod:`.incoming`)
    ``100 Trying`` at once; the SDP offer is read (an unreadable one gets 400/488, no common
    codec 488, no SDP at all 488: an *initial* late offer is not supported), then ``INCOMING`` is
    emitted with the user parts of ``From``/``To``. :meth:`SipSwitch.accept` sends ``180``;
    :meth:`SipSwitch.answer` sends ``200`` with our SDP answer and confirms the dialog. Every
    2xx we send to an INVITE (initial or re-INVITE) is retransmitted over UDP (T1 doubling up to
    T2) until the ACK with its CSeq arrives (RFC 3261 §13.3.1.4); without an ACK after 64*T1 the
    leg is BYEd and ``HUNGUP(failed)`` is emitted. A CANCEL before the answer gets 200, the INVITE
    487 and the core ``HUNGUP(cancelled)``; a CANCEL crossing our 200 gets 200 and changes nothing
    (§9.2). A BYE gets 200 and becomes ``HUNGUP`` with the cause of its ``Reason`` header
    (:func:`~callbridge.sip.causes.cause_of_reason`), ``normal`` without one.

Re-INVITEs (:mod:`.reinvite`)
    *Theirs*: an in-dialog INVITE with an offer gets a 200 with our answer (its direction the
    offer's mirrored, combined with ours: their ``sendonly`` -> our ``recvonly``, ``inactive`` and
    RFC 2543 ``c=0.0.0.0`` -> ``inactive``; while we hold them, ``sendonly``), and
    ``media.set_remote`` follows a new address or codec (``c=0.0.0.0`` keeps the old address).
    Without an offer (late offer) our offer goes in the 200 and their answer is read from the ACK.
    Glare: ``491`` while one of ours is pending; ``500`` + ``Retry-After`` while one of theirs (or
    the initial INVITE) is unanswered or un-ACKed (§14.2). A peer that goes on hold
    (``sendonly``/``inactive``/``c=0.0.0.0``) or resumes is reported as ``HELD``/``RESUMED`` for
    its leg; the core then holds/unholds the other parties of that leg's bridge. The engine keeps
    sending to a peer on hold (it has no per-leg send switch); phones ignore that audio.
    *Ours*: ``hold_reinvite`` (``CALLBRIDGE_SIP_HOLD_REINVITE``: ``phones`` by default, ``all``,
    ``off``) says which legs :meth:`hold` re-INVITEs with ``a=sendonly`` (we keep sending the
    music; the phone shows the call held and need not send) and :meth:`unhold` with
    ``a=sendrecv``. A phone's leg is one dialled to a registered binding, or an INVITE from where
    a live binding of its From user registered; trunk legs only hear the music. One re-INVITE at
    a time per leg: what the core wants is remembered and sent when the pending transaction
    (ours, theirs or an un-ACKed 200) is over. 2xx -> ACK, ``set_remote`` from the answer;
    ``491`` -> retried after the §14.1 random delay (2.1-4 s when we sent the dialog's INVITE,
    else 0-2 s); 408/481 -> the dialog is gone: BYE + ``HUNGUP(failed)``; other failures are
    logged and the media left as is.

REFER (:mod:`.refer`, RFC 3515)
    An in-dialog REFER with one ``Refer-To`` (no ``Replaces``: attended transfer is refused 403)
    gets ``202 Accepted``, a ``NOTIFY`` with ``message/sipfrag`` ``SIP/2.0 100 Trying`` and the
    event ``TRANSFER_REQUESTED`` with ``to_number`` = the Refer-To user part. The core
    blind-transfers the referring leg's party and hangs the referring leg up with cause
    ``transferred``: that hangup sends the final NOTIFY ``200 OK`` then the BYE. When the core
    cannot transfer, it calls :meth:`SipSwitch.refuse_transfer` -> final NOTIFY with ``404``
    (unknown number), ``484`` (malformed) or ``403`` (anything else); the call goes on.

Event rules (the same as :mod:`callbridge.adapters.simswitch`)
    Commands never call the listener synchronously; a ``hangup`` or ``answer`` commanded by the
    core produces no event back; after a leg is hung up nothing more is emitted for it. The core's
    ``hangup`` sends BYE (confirmed, with a Q.850 ``Reason``), CANCEL (outgoing, ringing) or the
    final response of :func:`~callbridge.sip.causes.response_for_cause` (incoming, unanswered).

Not built yet: PRACK/100rel, session timers, re-INVITEs in early
dialogs (answered 500 + Retry-After), and routing incoming trunk calls to a tenant by a DID table
(the ``INCOMING`` event carries the numbers; the core routes).
"""

from __future__ import annotations

from .base import UsernameFor
from .legs import HoldReinvite, user_part
from .switch import SipSwitch

__all__ = ["HoldReinvite", "SipSwitch", "UsernameFor", "user_part"]
