"""The WAV recorder on a hand-driven clock: exact durations and gap metadata."""

from __future__ import annotations

import wave
from pathlib import Path

from callbridge.media import g711
from callbridge.media.recording import Recorder, open_wav

FRAME = b"\x01\x00" * g711.FRAME_SAMPLES  # every sample 1


def read(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        return wav.readframes(wav.getnframes())


def test_duration_follows_the_clock_not_the_tick_count(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b.wav"  # parent directories are made
    rec = Recorder("r", ("x",), path, open_wav(path), 10.005)  # starts 5 ms before a tick
    rec.tick(10.0, FRAME)  # a late tick from before the start: nothing due
    rec.tick(10.01, FRAME)  # 5 ms due: the frame's last 40 samples
    for i in range(2, 6):
        rec.tick(10.0 + i * 0.02 - 0.01, FRAME)
    rec.tick(10.15, FRAME)  # a tick 40 ms late: the frame and 20 ms of silence
    info = rec.stop(10.157)  # 7 ms of silence after the last tick
    rec.close()
    pcm = read(path)
    assert info.duration_s == len(pcm) / 2 / 8000 == 0.152
    assert info.gaps == ()
    samples = [int.from_bytes(pcm[i : i + 2], "little", signed=True) for i in range(0, len(pcm), 2)]
    assert samples[: 40 + 4 * 160] == [1] * (40 + 4 * 160)


def test_paused_stretch_is_absent_and_recorded_as_a_gap(tmp_path: Path) -> None:
    path = tmp_path / "r.wav"
    rec = Recorder("r", ("x", "y"), path, open_wav(path), 0.0)
    t = 0.0
    for _ in range(10):
        t += 0.02
        rec.tick(t, FRAME)
    rec.pause(0.21)  # 10 ms of silence, then nothing
    assert rec.paused
    for _ in range(25):
        t += 0.02
        rec.tick(t, b"\x09\x00" * 160)  # what was said while paused
    rec.resume(0.71)
    assert rec.accept_after == 0.71
    for _ in range(5):
        t += 0.02
        rec.tick(t, FRAME)
    info = rec.stop(t)
    rec.close()
    pcm = read(path)
    assert b"\x09\x00" not in pcm
    assert abs(info.duration_s - (0.21 + (t - 0.71))) < 1 / 8000
    (gap,) = info.gaps
    assert gap.at_s == 0.21 and abs(gap.duration_s - 0.5) < 1e-9


def test_stop_while_paused_ends_with_the_gap(tmp_path: Path) -> None:
    rec = Recorder("r", ("x",), tmp_path / "r.wav", open_wav(tmp_path / "r.wav"), 0.0)
    rec.tick(0.02, FRAME)
    rec.pause(0.02)
    info = rec.stop(1.02)
    rec.close()
    assert info.duration_s == 0.02
    assert len(info.gaps) == 1 and info.gaps[0].duration_s == 1.0
    rec.close()  # idempotent
