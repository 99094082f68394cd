"""Recordings: a mono 8 kHz 16-bit PCM WAV written from the engine's 20 ms tick.

The number of samples in the file follows the engine clock, not the tick count: at every tick the
recorder writes exactly the samples due for the unpaused time elapsed so far, so the file's
duration equals the recorded (unpaused) time to the sample, whatever the tick jitter. Paused
stretches are absent from the file; each one is kept as a :class:`~.port.RecordingGap`.
"""

from __future__ import annotations

import contextlib
import wave
from pathlib import Path

from . import g711
from .port import RecordingGap, RecordingInfo


def open_wav(path: Path) -> wave.Wave_write:
    """Create ``path`` (and its directories) as a mono 8 kHz 16-bit WAV file.

    Blocking file-system work: the engine runs it (and :meth:`Recorder.close`) in a thread, so a
    slow disk cannot stall the relay.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = wave.open(str(path), "wb")  # noqa: SIM115 - the Recorder closes it
    wav.setnchannels(1)
    wav.setsampwidth(2)
    wav.setframerate(g711.SAMPLE_RATE)
    return wav


class Recorder:
    """One recording; the engine feeds it a mixed frame per tick (see :meth:`tick`).

    Writes are small appends to a buffered file (8 KB reach the OS about every half second).
    """

    def __init__(
        self,
        recording_id: str,
        leg_ids: tuple[str, ...],
        path: Path,
        wav: wave.Wave_write,
        now: float,
    ) -> None:
        self._wav: wave.Wave_write | None = wav
        self.recording_id = recording_id
        self.leg_ids = leg_ids
        self.path = path
        self.error: OSError | None = None
        self.paused = False
        # Audio that arrived before this time belongs to a paused stretch (or to before the start)
        # and must not be written even if it is still waiting in a leg's buffer.
        self.accept_after = now
        self._segment_start = now
        self._done_seconds = 0.0  # unpaused time of the finished segments
        self._written = 0  # samples
        self._paused_at = now
        self._gaps: list[RecordingGap] = []

    def _due(self, now: float) -> int:
        elapsed = self._done_seconds + max(0.0, now - self._segment_start)
        return round(elapsed * g711.SAMPLE_RATE)

    def _write(self, pcm: bytes) -> None:
        if self._wav is None or not pcm:
            return
        try:
            self._wav.writeframesraw(pcm)
        except OSError as exc:  # disk full and the like: stop writing, report at record_stop
            self.error = exc
            self._close_quietly()
            return
        self._written += len(pcm) // 2

    def tick(self, deadline: float, frame: bytes) -> None:
        """Write the samples due at ``deadline`` from the tick's 20 ms mixed ``frame``.

        Usually that is the whole frame; right after a start or resume only its tail, after a
        late tick the frame plus silence for the time missed.
        """
        if self.paused:
            return
        n = self._due(deadline) - self._written
        if n <= 0:
            return
        if n <= g711.FRAME_SAMPLES:
            self._write(frame[-2 * n :])
        else:
            self._write(frame + bytes(2 * (n - g711.FRAME_SAMPLES)))

    def _flush(self, now: float) -> None:
        # The part of the current tick before ``now`` has no mixed audio yet: write it as silence
        # (under 20 ms) so the duration stays exact.
        n = self._due(now) - self._written
        if n > 0:
            self._write(bytes(2 * n))

    def pause(self, now: float) -> None:
        if self.paused:
            return
        self._flush(now)
        self._done_seconds += max(0.0, now - self._segment_start)
        self.paused = True
        self._paused_at = now

    def resume(self, now: float) -> None:
        if not self.paused:
            return
        self._gaps.append(
            RecordingGap(
                at_s=self._written / g711.SAMPLE_RATE, duration_s=max(0.0, now - self._paused_at)
            )
        )
        self.paused = False
        self._segment_start = now
        self.accept_after = now

    def stop(self, now: float) -> RecordingInfo:
        """Write what is due at ``now`` and describe the file; :meth:`close` must follow."""
        if not self.paused:
            self._flush(now)
        else:  # a recording stopped while paused ends with its gap
            self.resume(now)
        self.paused = True  # nothing more is written
        return RecordingInfo(
            recording_id=self.recording_id,
            path=str(self.path),
            leg_ids=self.leg_ids,
            duration_s=self._written / g711.SAMPLE_RATE,
            gaps=tuple(self._gaps),
        )

    def close(self) -> None:
        """Finalise the WAV header and close the file (idempotent)."""
        wav, self._wav = self._wav, None
        if wav is not None:
            try:
                wav.close()
            except OSError as exc:
                self.error = self.error or exc

    def _close_quietly(self) -> None:
        wav, self._wav = self._wav, None
        if wav is not None:
            with contextlib.suppress(OSError):
                wav.close()
