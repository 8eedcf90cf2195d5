"""Writing video files with PyAV: one :class:`VideoWriter` for every job that encodes.

A whole-file job, each part of a split job, the stitch of those parts and
the live recording all write through it, so they share one set of rules:

- **Atomic**: frames go to a temporary file beside the output; :meth:`close`
  finishes it and renames it into place, :meth:`abort` (and any failure, a
  full disk or Ctrl-C included) removes it. There is never a half file, and
  an existing output is untouched until the new one is complete.
- **Odd sizes**: H.264 in yuv420p needs even width and height, so an odd
  size is encoded as yuv444p (High 4:4:4): the size is kept exactly and no
  pixel is dropped or invented. VP9 (.webm) and MPEG-4 (.avi) take odd sizes
  in yuv420p.
- **Timestamps**: every frame is written with the timestamp it is given (in
  the writer's ``time_base``), so variable frame rate survives; a missing or
  repeated one becomes the next tick, since muxers need them increasing.
  AVI has no per-frame timestamps: its time base is the frame rate.
- **Audio** from an input stream is copied packet for packet when the
  output container takes its codec, and re-encoded (e.g. AAC -> Opus for
  .webm) when it does not; packets whose timestamps go backwards (damaged
  input) are dropped with a warning instead of failing the file.
- **Encoder**: libx264's ``preset`` and ``crf``; ``bframes=False`` makes
  decode order equal presentation order, so split parts concatenate by
  packet copy. x264 frame threads overlap encoding with the caller.
- **Encode thread**: with ``queue_size`` the conversion, encoding and muxing
  run in their own thread behind a bounded queue and :meth:`VideoWriter.write`
  costs one frame copy; with ``block=False`` a frame that finds the queue
  full is left out (counted in ``dropped``) instead of stalling the caller,
  which is what a live recording wants.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from ..errors import SinkError
from ..frame import U8
from .atomic import KeepOrDiscard, atomic_output
from .frames import bgr_to_video_frame
from .handoff import END, Worker
from .video_reader import BAD_DATA, Packet

__all__ = ["CODEC_BY_EXT", "QUALITY", "VideoWriter"]

log = logging.getLogger(__name__)


# --quality -> (libx264 preset, crf)
QUALITY: dict[str, tuple[str, int]] = {
    "draft": ("ultrafast", 28),
    "fast": ("veryfast", 23),
    "good": ("medium", 20),
    "best": ("slow", 17),
}

CODEC_BY_EXT = {
    ".mp4": "libx264",
    ".m4v": "libx264",
    ".mov": "libx264",
    ".mkv": "libx264",
    ".avi": "mpeg4",
    ".webm": "libvpx-vp9",
}

# What the encoder and muxer raise for a failed write; anything else is a bug.
_WRITE_ERRORS = (av.error.FFmpegError, OSError)
_NO_PTS = -(2**62)


def sink_error(e: BaseException, what: str) -> SinkError:
    """A write failure as one readable line (``No space left on device``, not errno soup)."""
    if isinstance(e, OSError) and e.errno is not None:
        return SinkError(f"{what}: {os.strerror(e.errno)}")
    return SinkError(f"{what}: {e}")


class VideoWriter(KeepOrDiscard):
    """Encode BGR frames (or copy encoded packets) into a video file, atomically.

    ``size`` is (width, height) and ``rate`` the nominal frame rate; the
    codec follows the extension of ``path`` (:data:`CODEC_BY_EXT`). The
    timestamps given to :meth:`write` count ``time_base`` ticks (default
    ``1 / rate``). With ``template`` (a PyAV video stream, e.g. of a part
    made by another writer) nothing is encoded: :meth:`write_packet` copies
    that stream's packets, and size and rate come from it. ``audio`` is an
    input audio stream whose packets :meth:`write_audio` carries over.

    ``threads`` is the encoder's thread count (0: FFmpeg picks, which for
    x264 means frame threads on every core). ``queue_size`` > 0 runs the
    encoder in a thread behind a queue of that many frames; ``thread_setup``
    then runs first in that thread (e.g. to lower its priority).

    A context manager: leaving the block normally closes (keeps the file),
    an exception aborts (keeps nothing).

    Raises:
        SinkError: the extension has no codec, the temporary cannot be
            created, or encoding/writing fails (disk full, encoder refusal).
    """

    def __init__(
        self,
        path: Path,
        size: tuple[int, int] | None = None,
        rate: Fraction | float | None = None,
        *,
        time_base: Fraction | None = None,
        preset: str = "veryfast",
        crf: int = 23,
        bframes: bool = True,
        threads: int = 0,
        template: Any = None,
        audio: Any = None,
        queue_size: int = 0,
        block: bool = True,
        thread_setup: Callable[[], None] | None = None,
    ) -> None:
        ext = path.suffix.lower()
        if template is None and ext not in CODEC_BY_EXT:
            raise SinkError(f"unknown video extension {ext!r}: use {', '.join(CODEC_BY_EXT)}")
        if template is None and (size is None or rate is None):
            raise SinkError(f"{path}: a VideoWriter needs a size and a rate, or a template")
        self.path = path
        self.block = block
        self.frames = 0  # video frames (or packets) accepted
        self.dropped = 0  # frames left out because the encode queue was full
        self._bad_audio = 0
        self._last_pts = _NO_PTS  # last video pts, in the encoder's time base
        self._last_adts = _NO_PTS  # last copied audio dts
        self._last_time = float("-inf")  # last copied video packet, seconds
        self._resized = False
        # frame buffers the encode thread has finished with, for write() to fill again:
        # a fresh 6 MB array per 1080p frame costs more in page faults than the copy
        self._spare: deque[U8] = deque()
        self._copying = template is not None
        self._state = "open"  # -> "closed" | "aborted"
        self._exit = contextlib.ExitStack()
        self._out: Any = None
        self._worker: Worker | None = None
        tmp = self._exit.enter_context(atomic_output(path))
        # from here on, any failure, Ctrl-C or SIGTERM included, removes the temporary
        try:
            try:
                self._out = av.open(str(tmp), mode="w")
            except _WRITE_ERRORS as e:
                raise sink_error(e, f"cannot create {tmp}") from e
            if template is not None:
                self._vs = self._out.add_stream_from_template(template)
                self.size = (int(template.codec_context.width), int(template.codec_context.height))
                self.time_base = Fraction(template.time_base)
            else:
                assert size is not None and rate is not None
                fps = rate if isinstance(rate, Fraction) else Fraction(rate).limit_denominator(1001)
                self.size = (int(size[0]), int(size[1]))
                self.time_base = time_base or 1 / fps
                self._vs = self._video_stream(ext, fps, preset, crf, bframes, threads)
            # the timestamps frames carry into the encoder (the muxer may change the stream's)
            self._enc_tb = Fraction(self._vs.codec_context.time_base or self.time_base)
            self._aout, self._resampler = self._audio_stream(audio)
            if queue_size > 0:
                self._worker = Worker(
                    "blurcam-encode", lambda w: self._drain(w, thread_setup), queue_size
                )
        except BaseException as e:
            if self._out is not None:
                with contextlib.suppress(BaseException):
                    self._out.close()
            self._discard()
            if isinstance(e, _WRITE_ERRORS + BAD_DATA):
                raise sink_error(e, f"cannot write video to {path}") from e
            raise

    # ------------------------------------------------------------------ setup
    def _video_stream(
        self, ext: str, rate: Fraction, preset: str, crf: int, bframes: bool, threads: int
    ) -> Any:
        codec = CODEC_BY_EXT[ext]
        w, h = self.size
        vs: Any = self._out.add_stream(codec, rate=rate)
        vs.width, vs.height = w, h
        vs.pix_fmt = "yuv444p" if codec == "libx264" and (w % 2 or h % 2) else "yuv420p"
        # AVI has no per-frame timestamps: its time base is the frame rate.
        tb = 1 / rate if ext == ".avi" else self.time_base
        vs.time_base = tb
        vs.codec_context.time_base = tb
        if threads > 0:
            vs.codec_context.thread_count = threads
        else:
            vs.thread_type = "AUTO"
        if codec == "libx264":
            options = {"preset": preset, "crf": str(crf)}
            if not bframes:
                options["bf"] = "0"  # decode order = presentation order: parts concatenate
            vs.options = options
        return vs

    def _audio_stream(self, ain: Any) -> tuple[Any, Any]:
        """The output audio stream, and a resampler when the audio must be re-encoded."""
        if ain is None:
            return None, None
        out = self._out
        if ain.codec_context.name in out.supported_codecs:
            return out.add_stream_from_template(ain), None
        codec = "libopus" if out.default_audio_codec == "opus" else out.default_audio_codec
        try:
            rate = int(ain.codec_context.sample_rate or 48000)
            c = av.codec.Codec(codec, "w")
            rates = list(c.audio_rates or [])
            if rates and rate not in rates:
                rate = 48000 if 48000 in rates else int(rates[0])
            aout = out.add_stream(codec, rate=rate)
            lay = ain.codec_context.layout
            aout.layout = lay.name if lay is not None and lay.nb_channels <= 2 else "stereo"
            fmt = c.audio_formats[0].name if c.audio_formats else "fltp"
            aout.format = fmt
            log.info(
                "%s: audio %s cannot go into this container as is; re-encoding it as %s",
                self.path,
                ain.codec_context.name,
                codec,
            )
            return aout, av.AudioResampler(format=fmt, layout=aout.layout.name, rate=rate)
        except BAD_DATA as e:
            log.warning("%s: the audio cannot be written here (%s); dropped it", self.path, e)
            return None, None

    # ---------------------------------------------------------------- writing
    def _check_open(self) -> None:
        if self._worker is not None and self._worker.error is not None:
            err = self._worker.error
            if isinstance(err, _WRITE_ERRORS):
                raise sink_error(err, f"writing {self.path} failed") from err
            raise err
        if self._state != "open":
            raise SinkError(f"{self.path} is {self._state}; nothing more can be written")

    def write(self, frame: U8, pts: int | None = None) -> bool:
        """Add a uint8 HxWx3 BGR frame shown at ``pts`` (``time_base`` ticks; None: next tick).

        A frame of another size is scaled to the writer's (one warning). The
        frame is not kept: with an encode thread it is copied. Returns False
        when the frame was left out (``block=False`` and the queue full).

        Raises:
            SinkError: writing failed (now or, with a thread, earlier).
        """
        self._check_open()
        w, h = self.size
        if frame.shape[1] != w or frame.shape[0] != h:
            if not self._resized:
                log.warning(
                    "%s: frame size changed mid-stream to %dx%d; scaling to %dx%d",
                    self.path,
                    frame.shape[1],
                    frame.shape[0],
                    w,
                    h,
                )
                self._resized = True
            frame = np.asarray(cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA))
        elif self._worker is not None:
            frame = self._copy(frame)  # the caller may reuse its buffer
        if pts is not None and self._enc_tb != self.time_base:
            pts = round(pts * self.time_base / self._enc_tb)
        if pts is None or pts <= self._last_pts:
            pts = self._last_pts + 1 if self._last_pts != _NO_PTS else 0
        if not self._send(("v", frame, pts)):
            self.dropped += 1
            self._spare.append(frame)  # our own copy, never queued
            return False
        self._last_pts = pts
        self.frames += 1
        return True

    def _copy(self, frame: U8) -> U8:
        """A copy of ``frame`` in a spare buffer (at most queue size + 2 exist)."""
        try:
            buf = self._spare.pop()
        except IndexError:
            return np.array(frame, copy=True)
        if buf.shape != frame.shape:
            return np.array(frame, copy=True)
        np.copyto(buf, frame)
        return buf

    def write_packet(self, packet: Packet) -> None:
        """Copy an encoded video packet of the ``template`` stream (timestamps as they are).

        Raises:
            SinkError: the packet is not later than the one before (parts that
                overlap), or writing failed.
        """
        self._check_open()
        ts = packet.dts if packet.dts is not None else packet.pts
        t = float(ts * packet.time_base) if ts is not None else self._last_time
        if t <= self._last_time:
            raise SinkError(f"the video of {self.path} goes back in time at {t:.3f} s")
        self._last_time = t
        self._send(("p", packet, None))
        self.frames += 1

    def write_audio(self, packet: Packet) -> None:
        """Carry over an audio packet of the ``audio`` stream (copied or re-encoded)."""
        self._check_open()
        if self._aout is not None:
            self._send(("a", packet, None))

    def _send(self, item: tuple[str, Any, int | None]) -> bool:
        """Encode ``item`` here, or queue it for the encode thread; False when left out."""
        if self._worker is None:
            try:
                self._encode(item)
            except _WRITE_ERRORS as e:
                raise sink_error(e, f"writing {self.path} failed") from e
            return True
        if item[0] == "v" and not self.block:
            return self._worker.put_nowait(item)
        if self._worker.put(item):
            return True
        self._check_open()  # the thread failed: raise its error
        raise SinkError(f"{self.path}: the encode thread stopped")

    def _drain(self, worker: Worker, setup: Callable[[], None] | None) -> None:
        """Encode thread: items until :data:`END`; returns early when stopped (abort)."""
        if setup is not None:
            setup()
        while (item := worker.get()) is not END and not worker.stop.is_set():
            self._encode(item)

    def _encode(self, item: tuple[str, Any, int | None]) -> None:
        kind, obj, pts = item
        out = self._out
        if kind == "v":
            vf = bgr_to_video_frame(obj)
            if self._worker is not None:
                self._spare.append(obj)  # converted: write() may fill it again
            vf.pts = pts
            vf.time_base = self._enc_tb  # the muxer may change the stream's own
            for packet in self._vs.encode(vf):
                out.mux(packet)
        elif kind == "p":
            obj.stream = self._vs
            out.mux(obj)
        elif self._resampler is not None:
            try:
                frames = obj.decode()
            except BAD_DATA:
                self._bad_audio += 1
                return
            for af in frames:
                af.pts = None  # the encoder counts samples itself
                for rf in self._resampler.resample(af):
                    for packet in self._aout.encode(rf):
                        out.mux(packet)
        else:
            self._copy_audio(obj)

    def _copy_audio(self, packet: Any) -> None:
        if packet.dts <= self._last_adts or (packet.pts is not None and packet.pts < packet.dts):
            # a damaged input's audio going back in time, or pts before dts:
            # the muxer would refuse the whole file for it
            self._bad_audio += 1
            return
        self._last_adts = packet.dts
        packet.stream = self._aout
        try:
            self._out.mux(packet)
        except av.error.FFmpegError as e:
            if e.errno != errno.EINVAL:
                raise
            # the muxer refused this packet's timestamps; the check runs before
            # anything is written, so go on without it
            self._bad_audio += 1

    # -------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Flush the encoders, finish the file and move it into place (idempotent).

        A writer that got no frame keeps nothing: there is no video to keep
        (a warning says so, and an existing output stays as it was).

        Raises:
            SinkError: finishing failed; the temporary is removed then.
        """
        if self._state != "open":
            return
        try:
            if self._worker is not None:
                if self._worker.put(END):
                    self._worker.join(stop=False)
                self._check_open()  # an error of the thread
                self._worker = None
            self._flush()
            self._out.close()
        except BaseException as e:
            self.abort()
            if isinstance(e, _WRITE_ERRORS):
                raise sink_error(e, f"cannot finish {self.path}") from e
            raise
        if self._bad_audio:
            log.warning("%s: dropped %d broken audio packet(s)", self.path, self._bad_audio)
        if self.frames == 0:
            log.warning("%s: no frame was written; nothing kept", self.path)
            self._discard()
            return
        self._state = "closed"
        self._exit.close()  # atomic rename (SinkError if that fails)

    def _flush(self) -> None:
        if self.frames and not self._copying:
            for packet in self._vs.encode(None):
                self._out.mux(packet)
        if self._resampler is not None:
            for packet in self._aout.encode(None):
                self._out.mux(packet)

    def abort(self) -> None:
        """Stop, and remove the temporary: nothing is left at ``path`` (idempotent, quiet)."""
        if self._state != "open":
            return
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        with contextlib.suppress(BaseException):
            self._out.close()
        self._discard()

    def _discard(self) -> None:
        """Leave the atomic block as failed: the temporary goes, ``path`` is untouched."""
        self._state = "aborted"
        err = SinkError(f"writing {self.path} was abandoned")
        with contextlib.suppress(SinkError):
            self._exit.__exit__(SinkError, err, None)
