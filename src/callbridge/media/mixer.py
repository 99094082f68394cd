"""Per-leg receive buffer and the mix-minus used for conferences and recordings.

Packets arrive whenever the network delivers them; the engine's 20 ms tick takes one frame from
each leg's :class:`FrameBuffer`. The buffer absorbs arrival jitter (a late packet is simply taken
at the next tick) and is capped so a sender whose clock runs fast cannot build up delay.
"""

from __future__ import annotations

from collections import deque

from . import g711

MAX_BUFFERED_FRAMES = 5  # 100 ms: more than that is delay, not jitter


class FrameBuffer:
    """Decoded 16-bit audio from one leg, taken out one 20 ms frame at a time."""

    __slots__ = ("_chunks", "_size")

    def __init__(self) -> None:
        # (arrival time, pcm) per packet; the arrival time lets a recording refuse audio that
        # was spoken while it was paused but is still sitting in the buffer when it resumes.
        self._chunks: deque[tuple[float, bytes]] = deque()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def clear(self) -> None:
        self._chunks.clear()
        self._size = 0

    def push(self, pcm: bytes, arrival: float) -> None:
        self._chunks.append((arrival, pcm))
        self._size += len(pcm)
        limit = MAX_BUFFERED_FRAMES * g711.FRAME_BYTES
        while self._size > limit:
            _, dropped = self._chunks.popleft()
            self._size -= len(dropped)

    def pop(self) -> tuple[bytes, float] | None:
        """The next 20 ms frame and the arrival time of its newest part, or ``None`` if the
        buffer holds less than a frame (the caller plays silence: an underrun)."""
        need = g711.FRAME_BYTES
        if self._size < need:
            return None
        arrival, chunk = self._chunks.popleft()
        if len(chunk) == need:  # the usual case: 20 ms packets
            self._size -= need
            return chunk, arrival
        parts: list[bytes] = []
        got = 0
        while True:
            take = min(need - got, len(chunk))
            parts.append(chunk[:take])
            got += take
            if take < len(chunk):
                self._chunks.appendleft((arrival, chunk[take:]))
            if got == need:
                break
            arrival, chunk = self._chunks.popleft()
        self._size -= need
        return b"".join(parts), arrival


def mix_minus(frames: dict[str, bytes], listener: str) -> bytes | None:
    """What ``listener`` hears: the sum of every frame but its own (``None``: silence).

    A direct sum per listener costs N-2 additions per listener; for the handful of parties a
    contact-centre conference has this is cheaper and simpler than subtracting each party from a
    wider total (audioop's 16-bit add saturates, which would make total-minus-self wrong).
    """
    others = [frame for leg_id, frame in frames.items() if leg_id != listener]
    if not others:
        return None
    return g711.mix(others)
