"""G.711 µ-law (PCMU) and A-law (PCMA) through the C codecs of the stdlib ``audioop``.

``audioop`` is deprecated since Python 3.11 and gone in 3.13, where the ``audioop-lts`` package
provides the same module. Its import-time DeprecationWarning is silenced here, the only place that
imports it, because the test suite turns warnings into errors.

Linear audio is 16-bit signed little-endian ("native" for audioop on every platform we run on).
"""

from __future__ import annotations

import warnings
from typing import Final

from .port import Codec

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

SAMPLE_RATE: Final = 8000
FRAME_SAMPLES: Final = 160  # 20 ms
FRAME_BYTES: Final = 2 * FRAME_SAMPLES  # of 16-bit linear audio

PAYLOAD_TYPES: Final[dict[Codec, int]] = {"PCMU": 0, "PCMA": 8}
SILENCE_BYTE: Final[dict[Codec, int]] = {"PCMU": 0xFF, "PCMA": 0xD5}
SILENT_FRAME: Final[dict[Codec, bytes]] = {
    codec: bytes([byte]) * FRAME_SAMPLES for codec, byte in SILENCE_BYTE.items()
}
SILENT_PCM: Final = bytes(FRAME_BYTES)


def decode(payload: bytes, codec: Codec) -> bytes:
    """G.711 bytes to 16-bit linear samples."""
    if codec == "PCMU":
        return audioop.ulaw2lin(payload, 2)
    return audioop.alaw2lin(payload, 2)


def encode(pcm: bytes, codec: Codec) -> bytes:
    """16-bit linear samples to G.711 bytes."""
    if codec == "PCMU":
        return audioop.lin2ulaw(pcm, 2)
    return audioop.lin2alaw(pcm, 2)


_ALL_CODES = bytes(range(256))
# Transcoding is a byte-for-byte mapping, so bytes.translate with a 256-entry table does it in one
# C call, much cheaper than decoding and re-encoding every packet.
ULAW_TO_ALAW: Final = encode(decode(_ALL_CODES, "PCMU"), "PCMA")
ALAW_TO_ULAW: Final = encode(decode(_ALL_CODES, "PCMA"), "PCMU")


def transcode_table(src: Codec, dst: Codec) -> bytes | None:
    """The ``bytes.translate`` table from ``src`` to ``dst``, or ``None`` if they are the same."""
    if src == dst:
        return None
    return ULAW_TO_ALAW if src == "PCMU" else ALAW_TO_ULAW


def mix(frames: list[bytes]) -> bytes:
    """The saturating sum of equal-length 16-bit linear frames (silence if there are none)."""
    if not frames:
        return SILENT_PCM
    acc = frames[0]
    for frame in frames[1:]:
        acc = audioop.add(acc, frame, 2)
    return acc


def rms(pcm: bytes) -> int:
    """Root-mean-square level of 16-bit linear audio."""
    return int(audioop.rms(pcm, 2))


def to_8k_mono_16(pcm: bytes, width: int, channels: int, rate: int) -> bytes:
    """Convert linear PCM of any width, channel count and rate to 8 kHz mono 16-bit."""
    if width == 1:
        pcm = audioop.bias(pcm, 1, -128)  # WAV 8-bit is unsigned; audioop wants signed
    if width != 2:
        pcm = audioop.lin2lin(pcm, width, 2)
    if channels == 2:
        pcm = audioop.tomono(pcm, 2, 0.5, 0.5)
    elif channels != 1:
        raise ValueError(f"unsupported channel count {channels}")
    if rate != SAMPLE_RATE:
        pcm, _ = audioop.ratecv(pcm, 2, 1, rate, SAMPLE_RATE, None)
    return pcm
