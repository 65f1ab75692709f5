"""Camera capture core on generated video files and a live MJPEG stream over HTTP served
from this process (no camera on CI machines)."""

from __future__ import annotations

import http.server
import shutil
import socketserver
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from sac_ros.hardware.camera import (
    CameraCapture,
    CameraError,
    Frame,
    parse_source,
    square_rgb,
)

pytestmark = pytest.mark.timeout(60)


def write_video(path: Path, frames: int = 30, width: int = 96, height: int = 64) -> None:
    """Side bands red (BGR 0,0,255), the central square blue (BGR 255,0,0)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (width, height))
    assert writer.isOpened()
    for k in range(frames):
        image = np.zeros((height, width, 3), np.uint8)
        image[:, :, 2] = 255
        left = (width - height) // 2
        image[:, left : left + height] = (255, 0, 0)
        image[:4, left : left + 4] = (k * 8) % 256  # a changing corner, frame to frame
        writer.write(image)
    writer.release()


def counting_image(k: int, width: int = 96, height: int = 64) -> np.ndarray:
    """Frame k of a counting source: its number in the colour of the whole frame (BGR)."""
    return np.full((height, width, 3), (8 * (k % 32), 8 * (k // 32 % 32), 128), np.uint8)


def number(frame: Frame) -> int:
    """Which counting_image a delivered frame shows (RGB, so blue is channel 2)."""
    blue, green = frame.rgb[..., 2].mean(), frame.rgb[..., 1].mean()
    return int(round(blue / 8)) + 32 * int(round(green / 8))


def write_counting_video(path: Path, frames: int = 30, fps: float = 30.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (96, 64))
    assert writer.isOpened()
    for k in range(frames):
        writer.write(counting_image(k))
    writer.release()


class MjpegStream:
    """A live source: MJPEG over HTTP (multipart/x-mixed-replace, as IP cameras serve
    it) at ``fps`` in real time, counting frames. ``sent[k]``: time.monotonic() just
    before frame k is written to the socket (no reader can have it earlier)."""

    def __init__(self, fps: float = 30.0) -> None:
        self.fps, self.sent = fps, []
        self._stop = threading.Event()
        stream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                stream.serve(self.wfile)

            def log_message(self, *args) -> None:
                pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, out) -> None:
        start = time.monotonic()
        k = 0
        while not self._stop.is_set():
            jpeg = cv2.imencode(".jpg", counting_image(k))[1].tobytes()
            head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            self.sent.append(time.monotonic())
            try:
                out.write(head.encode() + jpeg + b"\r\n")
            except OSError:
                return  # the reader went away
            k += 1
            self._stop.wait(max(0.0, start + k / self.fps - time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> MjpegStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.avi"
    write_video(path)
    return path


def test_square_rgb_crop_resize_and_colour():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, :20] = (0, 255, 0)
    image[:, 60:] = (0, 255, 0)
    image[:, 20:60] = (255, 0, 0)  # BGR blue in the center
    out = square_rgb(image, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert np.all(out == (0, 0, 255))  # RGB blue, the green bands cropped away


def test_square_rgb_is_area_average():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    expected = image.reshape(32, 2, 32, 2, 3).astype(np.float64).mean(axis=(1, 3))[..., ::-1]
    out = square_rgb(image, 32).astype(np.float64)
    assert np.max(np.abs(out - expected)) <= 0.5 + 1e-9


def test_square_rgb_other_layouts_and_errors():
    gray = np.full((10, 20), 77, np.uint8)
    assert np.all(square_rgb(gray, 4) == 77)
    bgra = np.zeros((8, 8, 4), np.uint8)
    bgra[..., 0] = 200
    assert np.all(square_rgb(bgra, 4) == (0, 0, 200))
    with pytest.raises(ValueError, match="uint8"):
        square_rgb(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        square_rgb(np.zeros((8, 8, 5), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        square_rgb(np.zeros((0, 8, 3), np.uint8))


def test_parse_source():
    assert parse_source(0) == (0, cv2.CAP_ANY)
    assert parse_source(" 2 ") == (2, cv2.CAP_ANY)
    assert parse_source("/dev/video0") == ("/dev/video0", cv2.CAP_ANY)
    assert parse_source("rtsp://cam/stream") == ("rtsp://cam/stream", cv2.CAP_ANY)
    assert parse_source("videotestsrc ! appsink")[1] == cv2.CAP_GSTREAMER
    for bad in (-1, "", True, 1.5):
        with pytest.raises(ValueError):
            parse_source(bad)


def test_reads_32x32_rgb_with_increasing_timestamps(video):
    with CameraCapture(str(video)) as cam:
        frames = [cam.read() for _ in range(20)]
    assert all(f is not None for f in frames)
    for f in frames:
        assert f.rgb.shape == (32, 32, 3) and f.rgb.dtype == np.uint8
        centre = f.rgb[8:24, 8:24].astype(int)
        assert np.all(np.abs(centre - (0, 0, 255)) <= 12)  # blue, RGB order
    stamps = [f.stamp for f in frames]
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False))
    assert [f.sequence for f in frames] == list(range(20))
    stats = cam.stats()
    assert stats["frames"] == 20 and stats["dropped"] == 0 and stats["fps"] > 0
    assert stats["nominal_fps"] == pytest.approx(30.0)


def test_vanishing_source_reconnects_when_it_comes_back(video, tmp_path):
    keep = tmp_path / "copy.avi"
    shutil.copy(video, keep)
    cam = CameraCapture(str(video), backoff_initial_s=0.02, backoff_max_s=0.05)
    cam.open()
    assert cam.read() is not None
    video.unlink()  # gone: reading goes on to the end of the open file, then fails
    results = [cam.read() for _ in range(40)]
    assert results[-1] is None and not cam.connected
    assert cam.stats()["failed_reads"] >= 1
    time.sleep(0.1)
    assert cam.read() is None  # still gone
    shutil.copy(keep, video)
    frame = None
    deadline = time.monotonic() + 5
    while frame is None and time.monotonic() < deadline:
        frame = cam.read()
        time.sleep(0.01)
    assert frame is not None and frame.rgb.shape == (32, 32, 3)
    assert cam.stats()["reconnects"] == 1 and cam.connected
    cam.close()


def test_source_that_never_opens(tmp_path):
    cam = CameraCapture(str(tmp_path / "absent.avi"), open_timeout_s=0.3, backoff_initial_s=0.05)
    start = time.monotonic()
    with pytest.raises(CameraError, match="did not open within 0.3 s"):
        cam.open()
    assert 0.3 <= time.monotonic() - start < 3.0
    assert cam.read() is None and not cam.connected


class ManualClock:
    """A monotonic clock that moves only when told to: sleeping advances it. Pacing
    arithmetic then does not depend on how loaded the host is."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def test_a_file_read_slower_than_its_rate_plays_slower_and_drops_nothing(tmp_path):
    path = tmp_path / "count.avi"
    write_counting_video(path, frames=30, fps=30.0)
    clock = ManualClock()
    with CameraCapture(str(path), fps=10.0, clock=clock, sleep=clock.sleep) as cam:
        frames = [cam.read() for _ in range(10)]
        assert not cam.live
        stats = cam.stats()
        assert (stats["dropped"], stats["skipped"], stats["stale"]) == (0, 0, 0), stats
        assert [number(f) for f in frames] == list(range(10))  # every frame, in turn
        gaps = np.diff([f.stamp for f in frames])
        np.testing.assert_allclose(gaps, 0.1)  # the file plays at 10 fps, not its 30
        # The reader stalls: slots at +0.1, +0.2 and +0.3 s go by, and the read lands
        # mid-way through the half-period tolerance of the slot at +0.4 s.
        clock.sleep(0.45)
        late = cam.read()
        assert number(late) == 10  # a file skips nothing: the next frame, late
        assert cam.stats()["dropped"] == 3, cam.stats()
        assert cam.stats()["failed_reads"] == 0
        # The schedule goes on from the slot it landed in: the next frame is due at +0.5 s.
        after = cam.read()
        assert number(after) == 11 and after.stamp - late.stamp == pytest.approx(0.05)
        assert cam.stats()["dropped"] == 3


def test_a_file_paces_in_real_time(tmp_path):
    path = tmp_path / "count.avi"
    write_counting_video(path, frames=30, fps=30.0)
    with CameraCapture(str(path), fps=20.0) as cam:
        frames = [cam.read() for _ in range(6)]
    gaps = np.diff([f.stamp for f in frames])
    assert [number(f) for f in frames] == list(range(6))
    assert np.min(gaps) > 0.04 and np.median(gaps) < 0.1, gaps  # waits its slot, not more


def test_a_file_loops_without_a_failure(tmp_path):
    path = tmp_path / "count.avi"
    write_counting_video(path, frames=12, fps=30.0)
    with CameraCapture(str(path), fps=100.0) as cam:
        numbers = [number(cam.read()) for _ in range(30)]
        stats = cam.stats()
    assert numbers == [k % 12 for k in range(30)]
    assert stats["file_loops"] == 2 and stats["failed_reads"] == 0 and stats["reconnects"] == 0


def test_a_file_without_a_frame_count_loops_too(tmp_path):
    """A raw MJPEG recording (JPEGs back to back, no container) and a still image: their
    backends report no frame count, and their end is still an end, not a lost source."""
    raw = tmp_path / "count.mjpeg"
    raw.write_bytes(b"".join(cv2.imencode(".jpg", counting_image(k))[1].tobytes()
                             for k in range(12)))  # fmt: skip
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), counting_image(5))
    for path, expected, loops in ((raw, [k % 12 for k in range(30)], 2), (still, [5] * 30, 29)):
        with CameraCapture(str(path), fps=100.0) as cam:
            assert not cam.live
            frames = [cam.read() for _ in range(30)]
            stats = cam.stats()
        assert all(f is not None for f in frames), (path.name, stats)
        assert [number(f) for f in frames] == expected, path.name
        assert stats["failed_reads"] == 0 and stats["reconnects"] == 0, (path.name, stats)
        assert stats["file_loops"] == loops, (path.name, stats)


class ThrowingCapture:
    """OpenCV's own capture (a real cv2.VideoCapture inside), whose grab() or retrieve()
    raises as a driver or a GStreamer element can (cv2.error), on the grabs numbered in
    ``fail_on``. (A Python subclass of cv2.VideoCapture crashes OpenCV's wheel when it is
    collected, so this wraps one.)"""

    real = cv2.VideoCapture
    calls = 0
    fail_on: dict[int, str] = {}

    def __init__(self, *args: object) -> None:
        self._cap = self.real(*args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._cap, name)

    def grab(self) -> bool:
        ThrowingCapture.calls += 1
        if self.fail_on.get(ThrowingCapture.calls) == "grab":
            raise cv2.error("VIDIOC_DQBUF: No such device")
        return self._cap.grab()

    def retrieve(self, *args: object) -> tuple[bool, np.ndarray]:
        if self.fail_on.get(ThrowingCapture.calls) == "retrieve":
            raise cv2.error("could not decode the frame")
        return self._cap.retrieve(*args)


def test_an_exception_from_the_backend_is_a_failed_read_and_the_source_reopens(
    tmp_path, monkeypatch
):
    path = tmp_path / "count.avi"
    write_counting_video(path, frames=30)
    monkeypatch.setattr(ThrowingCapture, "calls", 0)
    monkeypatch.setattr(ThrowingCapture, "fail_on", {3: "grab", 6: "retrieve"})
    monkeypatch.setattr(cv2, "VideoCapture", ThrowingCapture)
    cam = CameraCapture(str(path), fps=100.0, backoff_initial_s=0.01, backoff_max_s=0.02)
    cam.open()
    frames, deadline = [], time.monotonic() + 5
    while len(frames) < 8 and time.monotonic() < deadline:
        frame = cam.read()  # never raises
        if frame is not None:
            frames.append(frame)
        time.sleep(0.005)
    stats = cam.stats()
    cam.close()
    assert len(frames) == 8, stats
    assert stats["backend_errors"] == 2 and stats["failed_reads"] == 2, stats
    assert stats["reconnects"] == 2 and "decode" in str(stats["last_backend_error"])
    assert [number(f) for f in frames][:2] == [0, 1]  # then the reopened file from its start


FRESH = 0.1  # s: three frame periods of a 30 fps stream (a backlog would be many)


def test_a_live_source_read_slower_skips_on_purpose_and_never_serves_stale_frames():
    with MjpegStream(fps=30.0) as stream:
        with CameraCapture(stream.url, fps=10.0, open_timeout_s=10.0) as cam:
            assert cam.live
            frames = [cam.read() for _ in range(12)]
            stats = cam.stats()
            assert stats["dropped"] == 0 and stats["failed_reads"] == 0, stats
            assert stats["skipped"] >= 15, stats  # about two of every three frames
            gaps = np.diff([f.stamp for f in frames])
            assert 0.08 < np.median(gaps) < 0.12, gaps
            # Each frame was grabbed as it arrived, not out of a buffer (FFmpeg may hold
            # a frame until the next one comes: one frame period, not a backlog).
            for f in frames[1:]:
                assert 0 <= f.stamp - stream.sent[number(f)] < FRESH, number(f)
            time.sleep(0.5)  # the reader stalls; the stream piles up in the buffers
            fresh = cam.read()
            assert 0 <= fresh.stamp - stream.sent[number(fresh)] < FRESH
            assert number(fresh) >= len(stream.sent) - 3
            stats = cam.stats()
            assert stats["stale"] >= 5, stats  # waited in a buffer: thrown away
            assert 3 <= stats["dropped"] <= 4, stats  # slots +0.1 .. +0.3 (or +0.4) s


@pytest.mark.skipif(
    cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER), reason="this OpenCV has GStreamer"
)
def test_a_gstreamer_pipeline_without_gstreamer_fails_at_once_and_says_why():
    start = time.monotonic()
    with pytest.raises(CameraError, match="built without GStreamer") as error:
        CameraCapture("videotestsrc ! videoconvert ! appsink", open_timeout_s=5.0)
    assert time.monotonic() - start < 1.0  # no retries: it can never open
    assert "GStreamer: NO" in str(error.value)


def test_a_crop_must_fit_the_frame():
    """Clipping a crop to a smaller frame would change what a pixel policy sees silently."""
    from sac_ros.hardware.camera import apply_crop

    frame = np.zeros((48, 64, 3), np.uint8)
    assert apply_crop(frame, (0, 0, 64, 48)).shape == (48, 64, 3)
    assert apply_crop(frame, (10, 8, 20, 30)).shape == (30, 20, 3)
    for crop in [(60, 40, 100, 100), (0, 0, 65, 48), (0, 1, 64, 48), (70, 0, 4, 4)]:
        with pytest.raises(ValueError, match="does not fit the 64x48 frame"):
            apply_crop(frame, crop)
