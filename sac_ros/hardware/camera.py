"""Camera capture without ROS: OpenCV source -> 32x32 RGB frames with timestamps.

A source is a device index (``0`` or ``"0"``), a device or file path, a URL, or a
GStreamer pipeline (any string containing ``!``; this needs an OpenCV built with
GStreamer, which the opencv-python wheels are not: :class:`CameraCapture` then raises
:class:`CameraError` at once, saying so). Each frame is first cut to the optional
``crop`` region (x, y, width, height in source pixels, clipped to the frame), then
center-cropped to a square, resized with ``cv2.INTER_AREA`` and converted BGR -> RGB
(uint8, HxWx3).

Pacing, with ``fps`` the most frames per second :meth:`CameraCapture.read` delivers
(0 = every frame the source gives):

* a live source (a device, a stream: anything without a frame count) sends frames in
  real time. :meth:`read` grabs every one of them, so none waits in a buffer, and
  delivers the first that is due; the others are ``skipped`` (on purpose, not dropped).
  A due frame that came out of a buffer at once (its grab took under a quarter of the
  source's frame period, so it is older than the moment of the grab) is ``stale``: it is
  discarded for the next, fresh one (after a stall the buffers hold many);
* a file plays at ``fps`` (its own frame rate with 0): :meth:`read` waits until the
  next frame is due. Nothing is skipped (it plays slower instead), and its end is no
  failure: it is reopened at once (``file_loops``), so it loops.

Dropped frames are frames that should have been delivered and were not: a failed read
counts one; otherwise frames are due on a grid of delivery periods (``1/fps``, or the
source's frame period when that is longer), and each grid slot that goes by without a
delivery counts one. A delivery up to half a period into the following slot is jitter,
not a drop. Without a period (a live source at its own rate), a gap of more than 1.5 of
the source's frame periods between two frames counts the frames that should have come in
it. A source that is away (lost, reopening) counts one failed read, not the frames it
missed meanwhile: ``reconnects`` and ``failed_reads`` tell of it. A backend that raises
(``cv2.error`` from a driver or a GStreamer element) is a failed read like any other, and
is counted in ``backend_errors`` with the last message kept.

Timestamps: a frame's ``stamp`` is the time ``grab()`` returned. OpenCV's
``CAP_PROP_POS_MSEC`` is no capture time on every backend: for a file it is the media
position, for a stream the stream's own clock; V4L2 reports the driver's buffer time, but
on a clock OpenCV does not name. Since a live source is read as fast as it sends and
buffered frames are discarded, the grab time lags the exposure by the transfer and
decoding only (plus the device's own latency).

:meth:`CameraCapture.read` never blocks on a lost source: when a read fails, the source is
released and reopened with exponential backoff on later calls, which return None
meanwhile; the counters tell what happened. :meth:`open` raises :class:`CameraError` when
a source does not open within ``open_timeout_s``. :meth:`interrupt` makes a :meth:`read`
that waits in another thread return None (shutdown).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

BUFFERED = 0.25  # a grab faster than this share of a frame period found a waiting frame
STALE_LIMIT_S = 1.0  # at most this much of a source's frames discarded in a row as stale


class CameraError(RuntimeError):
    """A source that cannot be opened."""


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray  # (size, size, 3) uint8
    stamp: float  # time.monotonic() when the frame was grabbed
    wall_time: float  # time.time() at the same moment (for message headers)
    sequence: int  # frames delivered so far, from 0


class _Grab(NamedTuple):
    ok: bool
    stamp: float  # clock() when grab() returned
    wall_time: float
    took: float  # s that grab() took


def square_rgb(frame: np.ndarray, size: int = 32) -> np.ndarray:
    """Center crop to a square, INTER_AREA resize to ``size``, BGR(A)/gray -> RGB uint8."""
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    image = np.asarray(frame)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {image.shape}")
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"empty image of shape {image.shape}")
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side]
    interpolation = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
    resized = cv2.resize(square, (size, size), interpolation=interpolation)
    return np.ascontiguousarray(cv2.cvtColor(resized, cv2.COLOR_BGR2RGB))


def parse_crop(crop: tuple[int, int, int, int] | list[int] | None) -> tuple[int, ...] | None:
    """A crop region (x, y, width, height) in pixels, or None for the whole frame."""
    if crop is None or len(crop) == 0:
        return None
    if len(crop) != 4:
        raise ValueError(f"crop is (x, y, width, height), got {list(crop)}")
    values = tuple(int(v) for v in crop)
    if any(v != c for v, c in zip(values, crop, strict=True)):
        raise ValueError(f"crop values must be whole pixels, got {list(crop)}")
    x, y, w, h = values
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ValueError(f"crop needs x, y >= 0 and width, height > 0, got {list(crop)}")
    return values


def apply_crop(image: np.ndarray, crop: tuple[int, ...] | None) -> np.ndarray:
    """The crop region of ``image``; ValueError unless it lies wholly inside the frame. A
    crop is set for one camera resolution: clipped to a smaller frame it would show a
    pixel policy another part of the scene, at another scale, without a word."""
    if crop is None:
        return image
    x, y, w, h = crop
    height, width = image.shape[:2]
    if x + w > width or y + h > height:
        raise ValueError(
            f"crop {list(crop)} (x, y, width, height) does not fit the {width}x{height} "
            "frame: a different resolution than the crop was set for?"
        )
    return image[y : y + h, x : x + w]


def parse_source(source: int | str) -> tuple[int | str, int]:
    """(what to pass to cv2.VideoCapture, API preference) for a source description."""
    if isinstance(source, bool):
        raise ValueError(f"not a camera source: {source!r}")
    if isinstance(source, int):
        if source < 0:
            raise ValueError(f"a device index is >= 0, got {source}")
        return source, cv2.CAP_ANY
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"a camera source is an index, a path, a URL or a pipeline: {source!r}")
    text = source.strip()
    if text.isdigit():
        return int(text), cv2.CAP_ANY
    if "!" in text:
        return text, cv2.CAP_GSTREAMER
    return text, cv2.CAP_ANY


def build_line(name: str) -> str:
    """The line of cv2.getBuildInformation() about ``name`` ("GStreamer: NO"), or ''."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().lower().startswith(name.lower() + ":"):
            return " ".join(line.split())
    return ""


def check_backend(source: int | str, api: int) -> None:
    """CameraError when this OpenCV cannot read the kind of source at all."""
    if api != cv2.CAP_GSTREAMER or cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
        return
    found = build_line("GStreamer") or "no GStreamer entry"
    raise CameraError(
        f"camera source {source!r} is a GStreamer pipeline, but this OpenCV "
        f"{cv2.__version__} was built without GStreamer (cv2.getBuildInformation(): "
        f"{found!r}); use a device index, a path or a URL, or an OpenCV built with GStreamer"
    )


class CameraCapture:
    def __init__(
        self,
        source: int | str,
        *,
        size: int = 32,
        crop: tuple[int, int, int, int] | list[int] | None = None,
        fps: float = 0.0,
        open_timeout_s: float = 5.0,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.target, self.api = parse_source(source)
        check_backend(source, self.api)
        self.source = source
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        if not (math.isfinite(fps) and fps >= 0):
            raise ValueError(f"fps must be >= 0, got {fps}")
        for name, value in (
            ("open_timeout_s", open_timeout_s),
            ("backoff_initial_s", backoff_initial_s),
            ("backoff_max_s", backoff_max_s),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive, got {value}")
        self.size = size
        self.crop = parse_crop(crop)
        self.fps = float(fps)
        self.open_timeout_s = open_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._interrupted = threading.Event()
        self._clock = clock
        self._sleep = sleep if sleep is not None else self._interrupted.wait
        self._cap: cv2.VideoCapture | None = None
        self._backoff = backoff_initial_s
        self._next_attempt = -math.inf
        self.live = True  # until a source opens and says otherwise
        self._source_period: float | None = None  # s per frame, as the source reports it
        self._period: float | None = None  # s per delivery slot, None: every frame
        self._due: float | None = None  # when the next delivery slot begins
        self._last_stamp: float | None = None
        self._fps_ema: float | None = None
        self.frames = 0
        self.dropped = 0
        self.failed_reads = 0
        self.skipped = 0
        self.stale = 0
        self.file_loops = 0
        self.reconnects = 0
        self.backend_errors = 0  # exceptions OpenCV raised (cv2.error), each a failed read
        self.last_backend_error = ""
        self._ever_opened = False

    @property
    def connected(self) -> bool:
        return self._cap is not None

    # --- opening ----------------------------------------------------------------------
    def _try_open(self) -> bool:
        try:
            cap = cv2.VideoCapture(self.target, self.api)
        except cv2.error as exc:  # a backend that throws instead of failing to open
            self._backend_error(exc)
            return False
        if not cap.isOpened():
            cap.release()
            return False
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self._source_period = 1.0 / fps if 0 < fps < 1000 else None
        is_file = isinstance(self.target, str) and os.path.isfile(self.target)
        self.live = not (is_file or cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0)
        self._period = self._delivery_period()
        self._backoff = self.backoff_initial_s
        return True

    def _delivery_period(self) -> float | None:
        wanted = 1.0 / self.fps if self.fps > 0 else None
        source = self._source_period
        if not self.live:
            return wanted or source
        if wanted is None or (source is not None and wanted <= source):
            return None  # a live source at its own rate: every frame
        return wanted

    def _reopen(self) -> bool:
        """Open the source anew (after a loss); a fresh schedule."""
        if not self._try_open():
            return False
        if self._ever_opened:
            self.reconnects += 1
        self._ever_opened = True
        self._due = self._last_stamp = None
        return True

    def open(self) -> None:
        """Open the source, retrying with backoff; CameraError after open_timeout_s."""
        if self._cap is not None:
            return
        deadline = self._clock() + self.open_timeout_s
        delay = self.backoff_initial_s
        while not self._reopen():
            remaining = deadline - self._clock()
            if self._interrupted.is_set():
                raise CameraError(f"camera source {self.source!r}: interrupted while opening")
            if remaining <= 0:
                raise CameraError(
                    f"camera source {self.source!r} did not open within {self.open_timeout_s} s"
                )
            self._sleep(min(delay, remaining))
            delay = min(2 * delay, self.backoff_max_s)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def interrupt(self) -> None:
        """Make a read() or open() waiting in another thread give up soon (shutdown)."""
        self._interrupted.set()

    def __enter__(self) -> CameraCapture:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lost(self, now: float) -> None:
        self.close()
        self._next_attempt = now + self._backoff
        self._backoff = min(2 * self._backoff, self.backoff_max_s)

    # --- reading ----------------------------------------------------------------------
    def read(self) -> Frame | None:
        """The next due frame, or None when the source is lost (reconnects with backoff)
        or :meth:`interrupt` was called. Waits for the frame's turn (see the module
        docstring)."""
        if self._cap is None:
            now = self._clock()
            if now < self._next_attempt:
                return None
            if not self._reopen():
                self._lost(now)
                return None
        grab = self._next_live() if self.live else self._next_from_file()
        if grab is None:
            return None
        return self._deliver(grab)

    def _grab(self) -> _Grab:
        assert self._cap is not None
        start = self._clock()
        try:
            ok = self._cap.grab()
        except cv2.error as exc:  # a backend that throws: a failed read, the source reopens
            self._backend_error(exc)
            ok = False
        stamp = self._clock()
        return _Grab(bool(ok), stamp, time.time(), stamp - start)

    def _buffered(self, grab: _Grab) -> bool:
        period = self._source_period
        return period is not None and grab.took < BUFFERED * period

    def _next_live(self) -> _Grab | None:
        """Grab every frame until one is due and fresh (skipping and discarding others)."""
        period = self._source_period
        stale_limit = 0 if period is None else max(8, round(STALE_LIMIT_S / period))
        stale_run = 0
        while not self._interrupted.is_set():
            grab = self._grab()
            if not grab.ok:
                return self._failed(grab.stamp)
            if self._due is not None and grab.stamp < self._due:
                self.skipped += 1
            elif self._buffered(grab) and stale_run < stale_limit:
                self.stale += 1
                stale_run += 1
            else:
                return grab
        return None

    def _next_from_file(self) -> _Grab | None:
        """Wait for the next slot, grab; at the end of the file, start it again."""
        if self._due is not None:
            wait = self._due - self._clock()
            if wait > 0:
                self._sleep(wait)
        if self._interrupted.is_set():
            return None
        grab = self._grab()
        if not grab.ok and self._at_end() and self._loop():
            grab = self._grab()
        if not grab.ok:
            return self._failed(grab.stamp)
        return grab

    def _at_end(self) -> bool:
        """A failed grab is the file's end: past its frame count, or, where the backend
        knows no count (a raw MJPEG/H.264 stream file, a still image: it reports <= 0 or
        garbage), after the file gave at least one frame since it was opened."""
        assert self._cap is not None
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        position = self._cap.get(cv2.CAP_PROP_POS_FRAMES)
        if not (math.isfinite(count) and count > 0):
            return position > 0
        return position >= count

    def _loop(self) -> bool:
        """Reopen a file that ended (its schedule goes on); False if it is gone."""
        self.close()
        if not self._try_open():
            return False
        self.file_loops += 1
        return True

    def _backend_error(self, exc: Exception) -> None:
        self.backend_errors += 1
        self.last_backend_error = " ".join(str(exc).split())[:200]

    def _failed(self, now: float) -> None:
        self.failed_reads += 1
        self.dropped += 1
        self._lost(now)
        return None

    def _deliver(self, grab: _Grab) -> Frame | None:
        assert self._cap is not None
        try:
            ok, image = self._cap.retrieve()
        except cv2.error as exc:
            self._backend_error(exc)
            ok, image = False, None
        if not ok or image is None or image.size == 0:
            return self._failed(grab.stamp)
        rgb = square_rgb(apply_crop(image, self.crop), self.size)
        self._count_missed(grab.stamp)
        frame = Frame(rgb, grab.stamp, grab.wall_time, self.frames)
        self.frames += 1
        return frame

    def _count_missed(self, stamp: float) -> None:
        """Dropped: the delivery slots that went by without a frame (module docstring)."""
        period = self._period
        if period is not None:
            if self._due is not None:
                late = stamp - self._due
                missed = max(0, math.floor(late / period - 0.5))
                self.dropped += missed
                self._due += (missed + 1) * period
            else:
                self._due = stamp + period
        elif self._source_period is not None and self._last_stamp is not None:
            gap = stamp - self._last_stamp
            if gap > 1.5 * self._source_period:
                self.dropped += round(gap / self._source_period) - 1
        if self._last_stamp is not None and stamp > self._last_stamp:
            rate = 1.0 / (stamp - self._last_stamp)
            self._fps_ema = rate if self._fps_ema is None else 0.9 * self._fps_ema + 0.1 * rate
        self._last_stamp = stamp

    def stats(self) -> dict[str, object]:
        return {
            "source": str(self.source),
            "connected": self.connected,
            "live": self.live,
            "frames": self.frames,
            "dropped": self.dropped,
            "failed_reads": self.failed_reads,
            "skipped": self.skipped,
            "stale": self.stale,
            "file_loops": self.file_loops,
            "reconnects": self.reconnects,
            "backend_errors": self.backend_errors,
            "last_backend_error": self.last_backend_error,
            "fps": self._fps_ema,
            "nominal_fps": None if self._source_period is None else 1.0 / self._source_period,
        }
