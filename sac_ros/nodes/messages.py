"""Conversions between ROS messages and arrays, each one checking what it reads.

Every reader raises ValueError with a message that names the problem (wrong names or
sizes, NaN, wrong image encoding...), so a node can log it, report it on /diagnostics
and skip the step instead of passing garbage on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from geometry_msgs.msg import PoseStamped, Vector3Stamped
from sensor_msgs.msg import Image, Imu, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, UInt8MultiArray

from sac_ros.nodes.common import stamp_seconds
from sac_ros.robots import dclaw


def _finite(name: str, values: np.ndarray) -> np.ndarray:
    if not np.isfinite(values).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return values


_ORDERS: dict[tuple[tuple[str, ...], tuple[str, ...]], list[int]] = {}


def _joint_order(have: tuple[str, ...], want: tuple[str, ...]) -> list[int]:
    """Where each wanted joint is in the message (remembered: a driver's order is fixed)."""
    order = _ORDERS.get((have, want))
    if order is None:
        index = {n: i for i, n in enumerate(have)}
        missing = [n for n in want if n not in index]
        if missing:
            raise ValueError(f"joint_states lacks joints {missing}")
        order = [index[n] for n in want]
        if len(_ORDERS) < 64:  # a bound, whatever names arrive
            _ORDERS[(have, want)] = order
    return order


def check_fresh(what: str, stamp: float, now: float, max_age: float) -> None:
    """ValueError unless a reading stamped ``stamp`` is at most ``max_age`` seconds old at
    ``now``, and not more than that in the future either: a sensor whose clock runs ahead
    (clock skew between computers) would otherwise count as fresh long after it stopped."""
    age = now - stamp
    if age > max_age:
        raise ValueError(f"{what} is {age:.3f} s old (max_sensor_age {max_age})")
    if age < -max_age:
        raise ValueError(
            f"{what} is stamped {-age:.3f} s in the future (clock skew? max_sensor_age {max_age})"
        )


def read_joint_state(
    msg: JointState, names: Sequence[str], need_velocity: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities in the order of ``names`` (the message may order them freely)."""
    if len(msg.name) != len(msg.position):
        raise ValueError(
            f"joint_states has {len(msg.name)} names but {len(msg.position)} positions"
        )
    order = _joint_order(tuple(msg.name), tuple(names))
    pos = _finite("joint_states position", np.asarray(msg.position, dtype=np.float64)[order])
    if need_velocity:
        if len(msg.velocity) != len(msg.name):
            raise ValueError(
                f"joint_states has {len(msg.velocity)} velocities for {len(msg.name)} joints"
            )
        vel = _finite("joint_states velocity", np.asarray(msg.velocity, dtype=np.float64)[order])
    else:
        vel = np.zeros(len(names))
    return pos, vel


def joint_state(
    names: Sequence[str],
    positions: np.ndarray,
    velocities: np.ndarray | None,
    efforts: np.ndarray | None = None,
) -> JointState:
    """A JointState; velocities or efforts None: left empty (not measured)."""
    msg = JointState()
    msg.name = list(names)
    msg.position = np.asarray(positions, dtype=np.float64).tolist()
    if velocities is not None:
        msg.velocity = np.asarray(velocities, dtype=np.float64).tolist()
    if efforts is not None:
        msg.effort = np.asarray(efforts, dtype=np.float64).tolist()
    return msg


# Colour encodings a 32x32 image may come in (a standard camera driver and an image_proc
# resize give bgr8 or rgba8 as often as rgb8): channel order, bytes per channel.
# Grayscale is refused: a policy that learnt from colour would see another world.
IMAGE_ENCODINGS = {
    "rgb8": ((0, 1, 2), 1), "bgr8": ((2, 1, 0), 1),
    "rgba8": ((0, 1, 2, None), 1), "bgra8": ((2, 1, 0, None), 1),
    "rgb16": ((0, 1, 2), 2), "bgr16": ((2, 1, 0), 2),
    "rgba16": ((0, 1, 2, None), 2), "bgra16": ((2, 1, 0, None), 2),
}  # fmt: skip


def read_image(msg: Image, shape: tuple[int, int, int] = (32, 32, 3)) -> np.ndarray:
    """An image of exactly ``shape`` as an rgb8 uint8 array (copy), from any encoding of
    IMAGE_ENCODINGS: channels reordered, alpha dropped, 16-bit values rounded to 8 bits
    (either byte order). Rows may be padded (``step`` > width * pixel size, as
    sensor_msgs/Image allows); the padding is dropped."""
    h, w, c = shape
    if msg.encoding not in IMAGE_ENCODINGS:
        raise ValueError(
            f"image encoding is {msg.encoding!r}, expected one of {', '.join(IMAGE_ENCODINGS)}"
        )
    order, depth = IMAGE_ENCODINGS[msg.encoding]
    if (msg.height, msg.width) != (h, w):
        raise ValueError(f"image is {msg.width}x{msg.height}, expected {w}x{h}")
    row = w * len(order) * depth
    step = int(msg.step)
    if step < row:
        raise ValueError(f"image row step is {step}, expected at least {row}")
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if data.size != h * step:
        raise ValueError(f"image has {data.size} bytes, expected {h * step} ({h} rows of {step})")
    rows = data.reshape(h, step)[:, :row]
    if depth == 2:
        wide = np.dtype(">u2" if msg.is_bigendian else "<u2")
        values = np.ascontiguousarray(rows).view(wide).astype(np.uint32)
        rows = ((values + 128) // 257).astype(np.uint8)  # 65535 -> 255, rounded
    pixels = rows.reshape(h, w, len(order))
    return pixels[:, :, [order.index(i) for i in range(c)]].copy()


def image(pixels: np.ndarray, frame_id: str = dclaw.CAMERA_FRAME) -> Image:
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:  # a float image in [0, 1] would be cast to black
        raise ValueError(f"expected a uint8 image, got {pixels.dtype}")
    pixels = np.ascontiguousarray(pixels)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got {pixels.shape}")
    msg = Image()
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = int(pixels.shape[1] * 3)
    msg.data = pixels.tobytes()
    return msg


def read_array(msg: Float64MultiArray, size: int, what: str = "command") -> np.ndarray:
    values = np.asarray(msg.data, dtype=np.float64)
    if values.shape != (size,):
        raise ValueError(f"{what} has {values.size} values, expected {size}")
    return _finite(what, values)


def float_array(values: np.ndarray) -> Float64MultiArray:
    return Float64MultiArray(data=np.asarray(values, dtype=np.float64).tolist())


# Lockstep: a joint command names the instant (the readings' stamp, ns) it answers, in
# its one layout dimension's label; forward command controllers read only the data.
INSTANT_LABEL = "instant_ns="


def command(values: np.ndarray, instant_ns: int | None = None) -> Float64MultiArray:
    msg = float_array(values)
    if instant_ns is not None:
        size = len(msg.data)
        msg.layout.dim = [
            MultiArrayDimension(label=f"{INSTANT_LABEL}{int(instant_ns)}", size=size, stride=size)
        ]
    return msg


def command_instant(msg: Float64MultiArray) -> int | None:
    """The instant (ns) a command answers, where it names one (see ``command``)."""
    for dim in msg.layout.dim:
        if dim.label.startswith(INSTANT_LABEL):
            try:
                return int(dim.label[len(INSTANT_LABEL) :])
            except ValueError:
                return None
    return None


def read_bytes(msg: UInt8MultiArray) -> bytes:
    return bytes(msg.data)


def byte_array(data: bytes) -> UInt8MultiArray:
    msg = UInt8MultiArray()
    msg.data = data
    return msg


def read_quaternion_wxyz(q: object, what: str) -> np.ndarray:
    wxyz = np.array([q.w, q.x, q.y, q.z], dtype=np.float64)  # type: ignore[attr-defined]
    _finite(what, wxyz)
    norm = np.linalg.norm(wxyz)
    if not 0.9 < norm < 1.1:
        raise ValueError(f"{what} is not a unit quaternion (norm {norm:.3f})")
    return wxyz / norm


def read_imu(msg: Imu) -> tuple[np.ndarray, np.ndarray]:
    """Orientation (w, x, y, z) and angular velocity (rad/s, body frame)."""
    if msg.orientation_covariance[0] == -1.0:  # sensor_msgs/Imu: no orientation estimate
        raise ValueError("imu gives no orientation (orientation_covariance[0] = -1)")
    quat = read_quaternion_wxyz(msg.orientation, "imu orientation")
    av = msg.angular_velocity
    gyro = _finite("imu angular velocity", np.array([av.x, av.y, av.z], dtype=np.float64))
    return quat, gyro


def read_pose(msg: PoseStamped) -> tuple[np.ndarray, np.ndarray]:
    """Position (m) and orientation (w, x, y, z) of a motion-capture pose."""
    p = msg.pose.position
    pos = _finite("mocap position", np.array([p.x, p.y, p.z], dtype=np.float64))
    return pos, read_quaternion_wxyz(msg.pose.orientation, "mocap orientation")


# sac/reward is a geometry_msgs/Vector3Stamped: header.stamp = the stamp of the sensor
# reading the reward was computed from; vector.x = reward, vector.y = 1.0 when the state is
# terminal, vector.z = 1.0 when the task counts as solved. rqt_plot: sac/reward/vector/x.
def reward_msg(stamp: object, reward: float, terminated: bool, success: bool) -> Vector3Stamped:
    msg = Vector3Stamped()
    msg.header.stamp = stamp
    msg.vector.x, msg.vector.y, msg.vector.z = float(reward), float(terminated), float(success)
    return msg


def read_reward(msg: Vector3Stamped) -> tuple[float, float, bool, bool]:
    """(stamp seconds, reward, terminated, success)."""
    v = msg.vector
    _finite("reward", np.array([v.x, v.y, v.z]))
    return stamp_seconds(msg.header.stamp), float(v.x), v.y > 0.5, v.z > 0.5
