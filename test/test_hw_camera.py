"""Camera capture core on generated video files (no camera on CI machines)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from sac_ros.hardware.camera import CameraCapture, CameraError, parse_source, square_rgb

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
