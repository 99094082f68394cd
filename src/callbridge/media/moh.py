"""Music on hold: a looped 8 kHz clip, played like a radio (one shared position for all).

Sharing the position means each 20 ms frame is encoded once per codec however many legs listen,
which keeps hundreds of parked or queued callers cheap.

The bundled clip ``sounds/hold.wav`` is made by this module (``python -m callbridge.media.moh
PATH``): a soft arpeggio over a I-vi-IV-V progression, synthesised, so no third-party recording is
shipped. If the file is missing from an installation the same clip is synthesised at start-up.
"""

from __future__ import annotations

import argparse
import math
import wave
from importlib import resources
from os import PathLike
from pathlib import Path

from . import g711
from .port import Codec

BUNDLED = "hold.wav"


def load_wav(path: str | PathLike[str]) -> bytes:
    """Read a PCM WAV file as 8 kHz mono 16-bit linear audio (whole frames only)."""
    with wave.open(str(path), "rb") as wav:
        pcm = wav.readframes(wav.getnframes())
        pcm = g711.to_8k_mono_16(pcm, wav.getsampwidth(), wav.getnchannels(), wav.getframerate())
    usable = len(pcm) - len(pcm) % g711.FRAME_BYTES
    if usable == 0:
        raise ValueError(f"{path}: shorter than one 20 ms frame")
    return pcm[:usable]


def synthesize_default() -> bytes:
    """The default hold music: 8 s of arpeggiated chords, 8 kHz mono 16-bit."""
    rate = g711.SAMPLE_RATE
    # C major, A minor, F major, G major; each chord is eight notes of 250 ms going up and down.
    chords = [(261.63, 329.63, 392.00), (220.00, 261.63, 329.63)]
    chords += [(174.61, 220.00, 261.63), (196.00, 246.94, 293.66)]
    note_len = rate // 4
    samples: list[int] = []
    for root, third, fifth in chords:
        pattern = [root, third, fifth, root * 2, fifth, third, root, third]
        for freq in pattern:
            for n in range(note_len):
                t = n / rate
                # soft attack, exponential decay: a plucked, unobtrusive timbre
                env = min(1.0, n / 80) * math.exp(-3.0 * t)
                tone = math.sin(2 * math.pi * freq * t) + 0.3 * math.sin(4 * math.pi * freq * t)
                bass = 0.35 * math.sin(2 * math.pi * (root / 2) * t) * math.exp(-1.0 * t)
                samples.append(int(7000 * (env * tone + bass)))
    return b"".join(max(-32768, min(32767, s)).to_bytes(2, "little", signed=True) for s in samples)


def load_default() -> bytes:
    """The bundled clip, or the synthesised one if the file is not installed."""
    resource = resources.files(__package__ or "callbridge.media").joinpath("sounds", BUNDLED)
    try:
        with resources.as_file(resource) as path:
            return load_wav(path)
    except (FileNotFoundError, OSError):
        return synthesize_default()


def write_wav(path: str | Path, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(g711.SAMPLE_RATE)
        wav.writeframes(pcm)


class MusicSource:
    """A looped clip; :meth:`advance` moves every listener on by one 20 ms frame."""

    def __init__(self, pcm: bytes) -> None:
        if not pcm or len(pcm) % g711.FRAME_BYTES:
            raise ValueError("music must be a whole number of 20 ms frames of 16-bit audio")
        self._pcm = pcm
        self._pos = 0
        self._encoded: dict[Codec, bytes] = {}

    def advance(self) -> None:
        self._pos = (self._pos + g711.FRAME_BYTES) % len(self._pcm)
        self._encoded.clear()

    def frame(self, codec: Codec) -> bytes:
        """The current frame in ``codec`` (encoded at most once per frame and codec)."""
        payload = self._encoded.get(codec)
        if payload is None:
            pcm = self._pcm[self._pos : self._pos + g711.FRAME_BYTES]
            payload = self._encoded[codec] = g711.encode(pcm, codec)
        return payload


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the default hold music WAV.")
    parser.add_argument("path", type=Path)
    write_wav(parser.parse_args().path, synthesize_default())


if __name__ == "__main__":
    main()
