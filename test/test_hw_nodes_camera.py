"""camera_node as a real process over DDS on loopback, on generated video files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from sac_ros.nodes.camera_node import CameraNode

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(120)]

WIDTH, HEIGHT, FRAMES, FPS = 96, 64, 30, 30.0
BLUE, RED = (0, 0, 255), (255, 0, 0)  # RGB


def write_video(path: Path) -> None:
    """Red side bands, a blue central square, a top-left corner that brightens per frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    assert writer.isOpened()
    left = (WIDTH - HEIGHT) // 2
    for k in range(FRAMES):
        image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        image[:, :, 2] = 255  # BGR red
        image[:, left : left + HEIGHT] = (255, 0, 0)  # BGR blue
        image[:16, left : left + 16] = 8 * k
        writer.write(image)
    writer.release()


class Camera:
    """One camera_node process and what it publishes."""

    def __init__(self, node: rclpy.node.Node, ns: str, log: Path, **params: object) -> None:
        self.ns, self.log = ns, log
        self.images: list[tuple[float, Image]] = []
        self.status: DiagnosticStatus | None = None
        self.values: dict[str, str] = {}
        node.create_subscription(Image, f"{ns}/camera/image_32x32",
                                 lambda m: self.images.append((time.monotonic(), m)),
                                 qos_profile_sensor_data)  # fmt: skip
        cmd = [sys.executable, "-m", "sac_ros.nodes.camera_node", "--ros-args",
               "-r", f"__ns:={ns}", "-p", "diagnostics_period:=0.1"]  # fmt: skip
        for key, value in params.items():
            cmd += ["-p", f"{key}:={value}"]
        with open(log, "a") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    def on_diag(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            if f"{self.ns}/camera" in s.name:
                self.status = s
                self.values = {kv.key: kv.value for kv in s.values}

    def diag_has(self, level: bytes, text: str) -> bool:
        s = self.status
        return s is not None and s.level == level and text in s.message

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


class Probe:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("camera_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.cameras: list[Camera] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for camera in self.cameras:
            camera.on_diag(msg)

    def camera(self, name: str, **params: object) -> Camera:
        cam = Camera(self.node, f"/cam_{name}_{os.getpid()}", self.tmp_path / f"{name}.log",
                     **params)  # fmt: skip
        self.cameras.append(cam)
        return cam

    def spin_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                logs = "\n".join(c.log.read_text()[-2000:] for c in self.cameras)
                states = [(c.status.message if c.status else None, c.values) for c in self.cameras]
                raise AssertionError(f"timed out waiting for {what}: {states}\n{logs}")
            for c in self.cameras:
                assert c.proc.poll() is None, c.log.read_text()
            self.executor.spin_once(timeout_sec=0.01)

    def close(self) -> None:
        for c in self.cameras:
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def probe(tmp_path):
    p = Probe(tmp_path)
    yield p
    p.close()


def pixels(msg: Image) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)


def test_video_file_is_published_as_32x32_rgb_with_capture_stamps(probe, tmp_path):
    video = tmp_path / "clip.avi"
    write_video(video)
    whole = probe.camera("whole", source=str(video), fps=FPS)
    band = probe.camera("band", source=str(video), fps=FPS, crop="[0,0,16,64]")  # red band
    slow = probe.camera("slow", source=str(video), fps=10.0)  # a third of the file's rate
    probe.spin_until(lambda: len(whole.images) >= 45 and len(band.images) >= 5, 30, "frames")
    msg = whole.images[-1][1]
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", 32, 32, 96)
    image = pixels(msg).astype(int)
    assert np.all(np.abs(image[16:, :] - BLUE) <= 40)  # the center square, bands cropped
    assert np.all(np.abs(pixels(band.images[-1][1]).astype(int) - RED) <= 40)
    corners = {int(pixels(m)[1, 1, 0]) for _, m in whole.images}
    assert len(corners) > 10  # distinct frames, not one frame repeated
    now_ros = probe.node.get_clock().now().nanoseconds * 1e-9
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in whole.images]
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False))
    assert 0 <= now_ros - stamps[-1] < 1.0
    # The rate follows fps (a file plays as fast as it is read otherwise).
    received = [t for t, _ in whole.images[-30:]]
    rate = (len(received) - 1) / (received[-1] - received[0])
    assert 10.0 < rate < 45.0, rate
    probe.spin_until(lambda: int(whole.values.get("frames", 0)) >= 45, 5, "diagnostics")
    assert whole.status.level == DiagnosticStatus.OK and "dropped" in whole.values
    assert float(whole.values["fps"]) > 5.0
    # Reading a file at a third of its rate drops nothing: it plays slower, every frame.
    probe.spin_until(lambda: int(slow.values.get("frames", 0)) >= 12, 10, "the slow camera")
    assert (slow.values["dropped"], slow.values["skipped"], slow.values["live"]) == (
        "0", "0", "False"), slow.values  # fmt: skip
    slow_corners = [int(pixels(m)[1, 1, 0]) for _, m in slow.images[:10]]
    # One frame (8 levels) apart each time; the file loops (corner 8 * (FRAMES - 1) -> 0),
    # and a late start can put the loop among the first ten.
    steps = [(b - a) % (8 * FRAMES) for a, b in zip(slow_corners, slow_corners[1:], strict=False)]
    assert all(0 < s <= 12 for s in steps), slow_corners
    assert 7.0 < float(slow.values["fps"]) < 13.0, slow.values
    assert whole.stop() == 0 and band.stop() == 0 and slow.stop() == 0


def test_missing_then_vanishing_source_retries_with_backoff(probe, tmp_path):
    video = tmp_path / "late.avi"
    cam = probe.camera("late", source=str(video), fps=FPS, open_timeout=0.3, backoff_max=0.2)
    probe.spin_until(lambda: cam.diag_has(DiagnosticStatus.ERROR, "not open"), 20,
                     "ERROR for a source that does not open")  # fmt: skip
    probe.spin_until(lambda: "did not open within 0.3 s" in cam.log.read_text(), 5, "the log")
    assert not cam.images
    write_video(video)  # the device appears: picked up by the retries
    probe.spin_until(lambda: len(cam.images) >= 5, 10, "frames once the source exists")
    probe.spin_until(lambda: cam.status.level == DiagnosticStatus.OK, 5, "diagnostics OK")
    hidden = tmp_path / "hidden.avi"
    video.rename(hidden)  # vanishes: the open file plays to its end, then reopening fails
    probe.spin_until(lambda: cam.diag_has(DiagnosticStatus.ERROR, "not open"), 10,
                     "ERROR after the source vanished")  # fmt: skip
    count = len(cam.images)
    assert "lost; reopening with backoff" in cam.log.read_text()
    hidden.rename(video)
    probe.spin_until(lambda: len(cam.images) >= count + 5, 10, "frames after the comeback")
    probe.spin_until(lambda: int(cam.values.get("reconnects", 0)) >= 1, 5, "reconnects >= 1")
    assert cam.stop() == 0


def test_a_gstreamer_pipeline_without_gstreamer_stops_the_node_saying_why(probe):
    if cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
        pytest.skip("this OpenCV has GStreamer")
    cam = probe.camera("gst", source="'videotestsrc ! videoconvert ! appsink'")
    assert cam.proc.wait(timeout=30) == 1
    text = cam.log.read_text()
    assert "built without GStreamer" in text and "GStreamer: NO" in text, text
    assert "Traceback" not in text, text


def test_an_unexpected_error_in_the_capture_thread_is_reported_and_capture_goes_on(
    probe, tmp_path, monkeypatch
):
    """Anything the capture raises that the capture itself does not handle (here an OSError
    from the backend's grab) is logged and an ERROR, the source is reopened, and frames
    flow again: the capture thread never dies while /diagnostics goes on saying OK."""
    video = tmp_path / "clip.avi"
    write_video(video)
    real, grabs = cv2.VideoCapture, [0]

    class FaultyCapture:  # OpenCV's capture, whose 10th grab raises (wraps: see test_hw_camera)
        def __init__(self, *args: object) -> None:
            self._cap = real(*args)

        def __getattr__(self, name: str) -> object:
            return getattr(self._cap, name)

        def grab(self) -> bool:
            grabs[0] += 1
            if grabs[0] == 10:
                raise OSError(5, "Input/output error")
            return self._cap.grab()

    monkeypatch.setattr(cv2, "VideoCapture", FaultyCapture)
    ns = f"/cam_inproc_{os.getpid()}"
    rclpy.init(args=["--ros-args", "-r", f"__ns:={ns}", "-p", f"source:={video}",
                     "-p", "fps:=60.0", "-p", "diagnostics_period:=0.1"])  # fmt: skip
    node = CameraNode()  # in rclpy's default context (the probe has its own)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    images: list[Image] = []
    statuses: list[DiagnosticStatus] = []
    probe.node.create_subscription(Image, f"{ns}/camera/image_32x32", images.append,
                                   qos_profile_sensor_data)  # fmt: skip
    probe.node.create_subscription(
        DiagnosticArray, "/diagnostics",
        lambda m: statuses.extend(s for s in m.status if f"{ns}/camera" in s.name), 50,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while len(images) < 20 or not any(s.level == DiagnosticStatus.ERROR for s in statuses):
            assert time.monotonic() < deadline, (len(images), [s.message for s in statuses])
            executor.spin_once(timeout_sec=0.005)
            probe.executor.spin_once(timeout_sec=0.005)
        assert node._thread.is_alive() and node.capture_errors == 1
        error = next(s for s in statuses if s.level == DiagnosticStatus.ERROR)
        assert "capture failed: OSError" in error.message and "reopening" in error.message
        count = len(images)
        while len(images) < count + 10:  # frames flow again after the error
            assert time.monotonic() < deadline, len(images)
            executor.spin_once(timeout_sec=0.005)
            probe.executor.spin_once(timeout_sec=0.005)
        assert grabs[0] > 20
    finally:
        node.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()
