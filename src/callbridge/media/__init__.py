"""Media: the :class:`MediaEngine` port and its embedded asyncio RTP relay/mixer.

How the B2BUA drives it (leg ids are the B2BUA's own; bridge ids are any string, e.g. the call id)::

    engine = EmbeddedMediaEngine(host, port_min, port_max)     # await engine.start() once
    engine.on_dtmf = lambda leg_id, digit: ...                   # RFC 4733 digits from phones

    addr = await engine.allocate(leg)              # before the SDP offer/answer: addr.host/port
    await engine.set_remote(leg, ip, port, "PCMU", 101)   # from the peer's SDP (again on re-INVITE)
    await engine.connect(call_id, [a, b])          # talk (moves the legs out of other bridges)
    await engine.hold(b) / unhold(b)               # b hears music, a hears silence
    await engine.mute(a) / unmute(a)
    await engine.disconnect(call_id, b); await engine.start_music(b)     # park / queue
    await engine.connect(other_id, [b, c])         # unpark, transfer (music stops by itself)
    await engine.connect(call_id, [c])             # third party: mix-minus conference
    await engine.disconnect(call_id, c)            # kick
    await engine.record_start(rec, [a, b], path); record_pause / record_resume / record_stop
    await engine.send_dtmf(b, "123#")
    await engine.release(leg)                      # after BYE; engine.stop() releases everything
"""

from .embedded import EmbeddedMediaEngine
from .port import (
    Codec,
    DtmfListener,
    LegStats,
    MediaAddress,
    MediaEngine,
    MediaError,
    RecordingGap,
    RecordingInfo,
)

__all__ = [
    "Codec",
    "DtmfListener",
    "EmbeddedMediaEngine",
    "LegStats",
    "MediaAddress",
    "MediaEngine",
    "MediaError",
    "RecordingGap",
    "RecordingInfo",
]
