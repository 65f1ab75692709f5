"""Every message reader names what is wrong with bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import Image

from sac_ros.nodes import messages
from sac_ros.robots import dclaw


def test_joint_state_is_reordered_by_name():
    names = list(reversed(dclaw.JOINT_NAMES))
    msg = messages.joint_state(names, np.arange(9.0), np.arange(9.0) * 2)
    pos, vel = messages.read_joint_state(msg, dclaw.JOINT_NAMES)
    np.testing.assert_array_equal(pos, np.arange(9.0)[::-1])
    np.testing.assert_array_equal(vel, 2 * np.arange(9.0)[::-1])


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda m: setattr(m, "name", m.name[:8]), "names but"),
        (lambda m: setattr(m, "name", ["x"] + list(m.name[1:])), "lacks joints"),
        (lambda m: setattr(m, "position", [np.nan] + list(m.position[1:])), "NaN"),
        (lambda m: setattr(m, "velocity", list(m.velocity[:3])), "velocities"),
    ],
)
def test_bad_joint_states(mutate, match):
    msg = messages.joint_state(dclaw.JOINT_NAMES, np.zeros(9), np.zeros(9))
    mutate(msg)
    with pytest.raises(ValueError, match=match):
        messages.read_joint_state(msg, dclaw.JOINT_NAMES)


def test_image_roundtrip_and_rejections():
    px = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(messages.read_image(messages.image(px)), px)
    with pytest.raises(ValueError, match="encoding"):
        bad = messages.image(px)
        bad.encoding = "mono8"  # a colour policy must not see gray
        messages.read_image(bad)
    with pytest.raises(ValueError, match="64x64"):
        messages.read_image(messages.image(np.zeros((64, 64, 3), np.uint8)))
    short = Image(height=32, width=32, encoding="rgb8", step=96, data=b"\x00" * 100)
    with pytest.raises(ValueError, match="bytes"):
        messages.read_image(short)
    with pytest.raises(ValueError, match="step"):
        messages.read_image(Image(height=32, width=32, encoding="rgb8", step=95, data=b"\0" * 3040))
    with pytest.raises(ValueError, match="uint8"):  # not cast: [0, 1] floats would be black
        messages.image(np.full((32, 32, 3), 0.8))


def test_image_with_padded_rows():
    """sensor_msgs/Image allows step > width * 3 (rows aligned by a driver or a resizer)."""
    px = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    padded = np.full((32, 100), 7, np.uint8)
    padded[:, :96] = px.reshape(32, 96)
    msg = Image(height=32, width=32, encoding="rgb8", step=100, data=padded.tobytes())
    np.testing.assert_array_equal(messages.read_image(msg), px)
    msg.data = padded.tobytes()[:-4]  # the last row without its padding: still short
    with pytest.raises(ValueError, match="bytes"):
        messages.read_image(msg)


@pytest.mark.parametrize("encoding", ["bgr8", "rgba8", "bgra8", "rgb16", "bgra16"])
@pytest.mark.parametrize("bigendian", [0, 1])
def test_image_in_other_colour_encodings(encoding, bigendian):
    """What a standard camera driver and an image_proc resize publish (bgr8, with alpha,
    16 bits in either byte order, rows padded) reads as the same rgb8 pixels."""
    px = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    rgb = px[:, :, ::-1] if encoding.startswith("bgr") else px
    channels = np.concatenate([rgb, np.full((32, 32, 1), 255, np.uint8)], axis=2) if (
        "a" in encoding[3:4]) else rgb  # fmt: skip
    if encoding.endswith("16"):  # the full 16-bit range: 8-bit v is v * 257, plus noise
        noise = np.random.default_rng(3).integers(-128, 128, channels.shape)
        wide = np.clip(channels.astype(np.int64) * 257 + noise, 0, 65535).astype(np.uint16)
        raw = wide.astype(">u2" if bigendian else "<u2").tobytes()
    else:
        raw = channels.tobytes()
    row = len(raw) // 32
    padded = np.zeros((32, row + 6), np.uint8)
    padded[:, :row] = np.frombuffer(raw, np.uint8).reshape(32, row)
    msg = Image(height=32, width=32, encoding=encoding, is_bigendian=bigendian,
                step=row + 6, data=padded.tobytes())  # fmt: skip
    np.testing.assert_array_equal(messages.read_image(msg), px)


def test_arrays_and_rewards():
    with pytest.raises(ValueError, match="8 values, expected 9"):
        messages.read_array(messages.float_array(np.zeros(8)), 9)
    with pytest.raises(ValueError, match="NaN"):
        messages.read_array(messages.float_array(np.full(9, np.inf)), 9)
    stamp = messages.joint_state([], [], []).header.stamp
    stamp.sec, stamp.nanosec = 3, 500
    t, r, term, ok = messages.read_reward(messages.reward_msg(stamp, -2.5, True, False))
    assert (t, r, term, ok) == (3 + 500e-9, -2.5, True, False)


def test_readings_must_be_fresh_and_not_from_the_future():
    messages.check_fresh("imu", stamp=9.9, now=10.0, max_age=0.25)
    messages.check_fresh("imu", stamp=10.1, now=10.0, max_age=0.25)  # a little skew is fine
    with pytest.raises(ValueError, match=r"imu is 0\.500 s old"):
        messages.check_fresh("imu", stamp=9.5, now=10.0, max_age=0.25)
    with pytest.raises(ValueError, match=r"imu is stamped 5\.000 s in the future"):
        messages.check_fresh("imu", stamp=15.0, now=10.0, max_age=0.25)


def test_the_policy_reads_a_valve_encoder_without_velocity():
    from sensor_msgs.msg import JointState

    from sac_ros.nodes.policy_node import _parse_extra

    bare = JointState(name=[dclaw.VALVE_JOINT], position=[0.7])  # position only
    np.testing.assert_allclose(_parse_extra("valve", bare), [0.7])
    with pytest.raises(ValueError, match="finite"):
        _parse_extra("valve", JointState(name=[dclaw.VALVE_JOINT], position=[float("nan")]))


def test_an_imu_without_orientation_is_refused():
    from sensor_msgs.msg import Imu

    imu = Imu()
    imu.orientation.w = 1.0
    quat, gyro = messages.read_imu(imu)
    np.testing.assert_allclose(quat, [1, 0, 0, 0])
    imu.orientation_covariance[0] = -1.0  # sensor_msgs/Imu: "no orientation estimate"
    with pytest.raises(ValueError, match="no orientation"):
        messages.read_imu(imu)


def test_diagnostics_take_problems_from_other_threads():
    """The camera's capture thread and the Gazebo adapter's service threads report
    problems while the executor publishes: publishing must never see the dict change."""
    import sys
    import threading
    import time

    import rclpy

    from sac_ros.nodes.common import ERROR, Diagnostics

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("diagnostics_threads", context=context)
    try:
        diag = Diagnostics(node, "camera")
        diag.problem("frame", ERROR, "bad frame", hold=60.0)
        stop = threading.Event()

        def flapping_source() -> None:
            while not stop.is_set():
                diag.problem("source", ERROR, "not open", hold=1.0)
                diag.clear("source")

        previous = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as possible
        thread = threading.Thread(target=flapping_source, daemon=True)
        thread.start()
        try:
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                diag.publish()
        finally:
            stop.set()
            thread.join()
            sys.setswitchinterval(previous)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_a_lockstep_command_names_its_instant():
    msg = messages.command(np.arange(9.0), 12_300_000_001)
    assert messages.command_instant(msg) == 12_300_000_001
    np.testing.assert_array_equal(messages.read_array(msg, 9), np.arange(9.0))
    assert messages.command_instant(messages.command(np.zeros(9))) is None  # no instant
    assert messages.command_instant(messages.float_array(np.zeros(9))) is None
    msg.layout.dim[0].label = "instant_ns=soon"  # not a number: names no instant
    assert messages.command_instant(msg) is None
