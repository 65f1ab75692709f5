"""Camera capture without ROS: OpenCV source -> 32x32 RGB frames with timestamps.

A source is a device index (``0`` or ``"0"``), a device or file path, a URL, or a
GStreamer pipeline (any string containing ``!``). Each frame is first cut to the
optional ``crop`` region (x, y, width, height in source pixels, clipped to the frame),
then center-cropped to a square, resized with ``cv2.INTER_AREA`` and converted BGR -> RGB
(uint8, HxWx3).

:meth:`CameraCapture.read` never blocks on a lost source: when a read fails, the source is
released and reopened with exponential backoff on later calls, which return None
meanwhile; the frame counters tell what happened. :meth:`open` raises
:class:`CameraError` when a source does not open within ``open_timeout_s``.

Dropped frames: a failed read counts as one; when the source reports a frame rate, a gap
between two frames longer than 1.5 periods counts the frames that should have come in it.
A file source that ends is reopened (it loops), like a device that comes back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np


class CameraError(RuntimeError):
    """A source that cannot be opened."""


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray  # (size, size, 3) uint8
    stamp: float  # time.monotonic() when the frame was grabbed
    wall_time: float  # time.time() at the same moment (for message headers)
    sequence: int  # frames delivered so far, from 0


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
    """The crop region of ``image`` (clipped to it); ValueError if nothing is left."""
    if crop is None:
        return image
    x, y, w, h = crop
    cut = image[y : y + h, x : x + w]
    if cut.size == 0:
        raise ValueError(
            f"crop {list(crop)} lies outside the {image.shape[1]}x{image.shape[0]} frame"
        )
    return cut


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


class CameraCapture:
    def __init__(
        self,
        source: int | str,
        *,
        size: int = 32,
        crop: tuple[int, int, int, int] | list[int] | None = None,
        open_timeout_s: float = 5.0,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.target, self.api = parse_source(source)
        self.source = source
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        for name, value in (
            ("open_timeout_s", open_timeout_s),
            ("backoff_initial_s", backoff_initial_s),
            ("backoff_max_s", backoff_max_s),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive, got {value}")
        self.size = size
        self.crop = parse_crop(crop)
        self.open_timeout_s = open_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._clock, self._sleep = clock, sleep
        self._cap: cv2.VideoCapture | None = None
        self._backoff = backoff_initial_s
        self._next_attempt = -math.inf
        self._nominal_period: float | None = None
        self._last_stamp: float | None = None
        self._fps_ema: float | None = None
        self.frames = 0
        self.dropped = 0
        self.failed_reads = 0
        self.reconnects = 0
        self._ever_opened = False

    @property
    def connected(self) -> bool:
        return self._cap is not None

    def _try_open(self) -> bool:
        cap = cv2.VideoCapture(self.target, self.api)
        if not cap.isOpened():
            cap.release()
            return False
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self._nominal_period = 1.0 / fps if 0 < fps < 1000 else None
        self._backoff = self.backoff_initial_s
        if self._ever_opened:
            self.reconnects += 1
        self._ever_opened = True
        return True

    def open(self) -> None:
        """Open the source, retrying with backoff; CameraError after open_timeout_s."""
        if self._cap is not None:
            return
        deadline = self._clock() + self.open_timeout_s
        delay = self.backoff_initial_s
        while not self._try_open():
            remaining = deadline - self._clock()
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

    def __enter__(self) -> CameraCapture:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lost(self, now: float) -> None:
        self.close()
        self._next_attempt = now + self._backoff
        self._backoff = min(2 * self._backoff, self.backoff_max_s)

    def read(self) -> Frame | None:
        """The next frame, or None when the source is lost (reconnects with backoff)."""
        now = self._clock()
        if self._cap is None:
            if now < self._next_attempt:
                return None
            if not self._try_open():
                self._lost(now)
                return None
        assert self._cap is not None
        ok = self._cap.grab()
        stamp, wall = self._clock(), time.time()
        image = None
        if ok:
            ok, image = self._cap.retrieve()
        if not ok or image is None or image.size == 0:
            self.failed_reads += 1
            self.dropped += 1
            self._lost(stamp)
            return None
        rgb = square_rgb(apply_crop(image, self.crop), self.size)
        if self._last_stamp is not None:
            gap = stamp - self._last_stamp
            if self._nominal_period and gap > 1.5 * self._nominal_period:
                self.dropped += int(round(gap / self._nominal_period)) - 1
            if gap > 0:
                rate = 1.0 / gap
                self._fps_ema = rate if self._fps_ema is None else 0.9 * self._fps_ema + 0.1 * rate
        self._last_stamp = stamp
        frame = Frame(rgb, stamp, wall, self.frames)
        self.frames += 1
        return frame

    def stats(self) -> dict[str, object]:
        return {
            "source": str(self.source),
            "connected": self.connected,
            "frames": self.frames,
            "dropped": self.dropped,
            "failed_reads": self.failed_reads,
            "reconnects": self.reconnects,
            "fps": self._fps_ema,
            "nominal_fps": None if self._nominal_period is None else 1.0 / self._nominal_period,
        }
