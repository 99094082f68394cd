"""Media: the :class:`MediaEngine` port and its embedded asyncio RTP relay/mixer."""

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
