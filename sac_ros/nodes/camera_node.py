"""Camera node: OpenCV capture -> ``camera/image_32x32`` (sensor_msgs/Image, rgb8, 32x32).

sac_ros.hardware.camera.CameraCapture runs in a thread of its own, so a slow or hanging
device never blocks the executor. Each frame is cut to ``crop`` (x, y, width, height in
source pixels; [0, 0, 0, 0] = the whole frame), center-cropped to a square, resized with
area interpolation and published with sensor QoS, stamped with the time ``grab()``
returned for it (not the time it was published; see the capture module on why not the
backend's own timestamps).

Parameters: ``source`` (a device index such as "0", a device or file path, a URL, or a
GStreamer pipeline), ``fps`` (the most frames published per second; 0 = as the source
delivers: every frame of a live source, a file at its own frame rate; a file source plays
at this rate and loops; a live source is read at its own rate and the frames between two
due ones are skipped), ``crop``, ``open_timeout`` and ``backoff_max`` (s).

A source that does not open is logged as an error and retried with exponential backoff
(up to ``backoff_max``) for as long as the node runs; a source that drops is reopened the
same way (an absence shorter than half a second is no error). A source this OpenCV cannot
read at all (a GStreamer pipeline without GStreamer support) stops the node at start with
an error saying so (exit status 1).

/diagnostics: ERROR while no source is open; ``fps`` (measured), ``nominal_fps`` (the
source's), ``fps_limit``, ``live``, ``frames``, ``published``, ``dropped`` (frames due and
not delivered: failed reads, delivery slots missed), ``skipped`` (live frames passed over
on purpose to keep to ``fps``), ``stale`` (frames found waiting in a buffer and discarded
for a fresh one), ``failed_reads``, ``file_loops``, ``reconnects``, ``backend_errors``
(exceptions OpenCV raised, each a failed read) with ``last_backend_error``, and
``capture_errors``: any other exception in the capture thread is logged, reported as an
ERROR and the source reopened; the thread never dies silently.
"""

from __future__ import annotations

import math
import sys
import threading
import time

import numpy as np
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import Image

from sac_ros.hardware.camera import CameraCapture, CameraError, Frame
from sac_ros.nodes import messages
from sac_ros.nodes.common import ERROR, SENSOR_QOS, Diagnostics, declare, spin_node
from sac_ros.robots import dclaw

IMAGE_SIZE = 32  # the topic's name promises it
IDLE_SLEEP_S = 0.01  # while the source is away
LOST_GRACE_S = 0.5  # away longer than this: an error


class CameraNode(Node):
    def __init__(self) -> None:
        super().__init__("camera")
        self.source = declare(self, "source", "0", "Device index, path, URL or GStreamer pipeline")
        self.fps = declare(self, "fps", 30.0, "Frames per second at most (0 = source's rate)",
                           lo=0.0, hi=1000.0)  # fmt: skip
        crop = declare(self, "crop", [0, 0, 0, 0], "Region x, y, width, height; 0s = whole")
        open_timeout = declare(self, "open_timeout", 5.0, "First open: give up after (s)",
                               lo=0.1, hi=600.0)  # fmt: skip
        backoff_max = declare(self, "backoff_max", 2.0, "Longest wait between reopen tries (s)",
                              lo=0.01, hi=600.0)  # fmt: skip
        self.frame_id = declare(
            self, "frame_id", dclaw.CAMERA_FRAME, "header.frame_id of the images (URDF frame)"
        )
        diag_period = declare(self, "diagnostics_period", 1.0, "Seconds between /diagnostics",
                              lo=0.05, hi=60.0)  # fmt: skip
        try:
            self.capture = CameraCapture(
                self.source,
                size=IMAGE_SIZE,
                crop=None if not any(crop) else list(crop),
                fps=self.fps,
                open_timeout_s=open_timeout,
                backoff_max_s=backoff_max,
            )
        except CameraError as exc:  # a source that can never open
            self.get_logger().fatal(str(exc))
            raise
        self.published = 0
        self.capture_errors = 0
        self.pub = self.create_publisher(Image, "camera/image_32x32", SENSOR_QOS)
        self.diag = Diagnostics(self, "camera", hardware_id=f"camera:{self.source}",
                                period=diag_period)  # fmt: skip
        self.diag.values_from(self._diag_values)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera-capture", daemon=True)
        self._thread.start()

    # --- the capture thread ---------------------------------------------------------
    def _run(self) -> None:
        log = self.get_logger()
        try:
            self.capture.open()
            log.info(f"camera source {self.source!r} open")
        except CameraError as exc:
            log.error(f"{exc}; retrying with backoff (up to {self.capture.backoff_max_s:g} s)")
        # Away since (monotonic s), None while open; a file that loops or a device that
        # hiccups comes back at once, so only an absence longer than LOST_GRACE_S counts.
        away_since = None if self.capture.connected else -math.inf
        reported = away_since is not None
        while not self._stop.is_set():
            try:
                frame = self.capture.read()  # waits for the frame's turn (fps)
            except ValueError as exc:  # a crop outside the frame: a configuration error
                self.diag.problem("frame", ERROR, f"bad frame: {exc}", hold=5.0)
                log.error(f"bad frame: {exc}", throttle_duration_sec=5.0)
                self._stop.wait(0.5)
                continue
            except Exception as exc:  # anything else: the thread must not die silently
                self.capture_errors += 1
                what = f"capture failed: {type(exc).__name__}: {exc}"
                self.diag.problem("capture", ERROR, f"{what}; reopening the source", hold=5.0)
                log.error(f"{what}; reopening the source", throttle_duration_sec=5.0)
                self.capture.close()  # the next read reopens it
                self._stop.wait(0.5)
                continue
            now = time.monotonic()
            if self.capture.connected:
                if reported:
                    log.info(f"camera source {self.source!r} open")
                away_since, reported = None, False
            elif away_since is None:
                away_since = now
            if away_since is not None and now - away_since > LOST_GRACE_S:
                self.diag.problem("source", ERROR, f"camera source {self.source!r} not open; "
                                  "retrying with backoff", hold=1.0)  # fmt: skip
                if not reported:
                    log.error(f"camera source {self.source!r} lost; reopening with backoff")
                    reported = True
            if frame is None:
                self._stop.wait(IDLE_SLEEP_S)
                continue
            self.diag.clear("source")
            self._publish(frame)

    def _publish(self, frame: Frame) -> None:
        msg = messages.image(np.asarray(frame.rgb), self.frame_id)
        age_ns = int((time.monotonic() - frame.stamp) * 1e9)
        msg.header.stamp = Time(nanoseconds=self.get_clock().now().nanoseconds - age_ns).to_msg()
        self.pub.publish(msg)
        self.published += 1

    # --- diagnostics and shutdown ---------------------------------------------------
    def _diag_values(self) -> dict[str, object]:
        values = dict(self.capture.stats())
        fps = values.get("fps")
        values["fps"] = None if fps is None else round(float(fps), 2)
        values["published"] = self.published
        values["capture_errors"] = self.capture_errors
        values["fps_limit"] = self.fps
        return values

    def close(self) -> None:
        self._stop.set()
        self.capture.interrupt()
        self._thread.join(timeout=5.0)
        self.capture.close()


def main(args: list[str] | None = None) -> None:
    try:
        spin_node(CameraNode, args)
    except CameraError:  # logged by the node: the source can never open
        sys.exit(1)


if __name__ == "__main__":
    main()
