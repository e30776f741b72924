"""ROS 2 message types pcctrl reads and writes, their fields as float columns, and CDR encoding."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ._deps import require

JOINT_STATE = "sensor_msgs/msg/JointState"
IMU = "sensor_msgs/msg/Imu"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"
FLOAT64_ARRAY = "std_msgs/msg/Float64MultiArray"

_XYZ, _XYZW = ("x", "y", "z"), ("x", "y", "z", "w")
# msgtype -> {field: (attribute path, column names)}; JointState columns are its joint names.
FIELDS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    JOINT_STATE: {"position": ("position", ()), "velocity": ("velocity", ()), "effort": ("effort", ())},
    IMU: {"orientation": ("orientation", _XYZW), "angular_velocity": ("angular_velocity", _XYZ),
          "linear_acceleration": ("linear_acceleration", _XYZ)},
    POSE_STAMPED: {"position": ("pose.position", _XYZ), "orientation": ("pose.orientation", _XYZW)},
    TWIST_STAMPED: {"linear": ("twist.linear", _XYZ), "angular": ("twist.angular", _XYZ)},
    FLOAT64_ARRAY: {"data": ("data", ())},
}
HAS_HEADER = {JOINT_STATE, IMU, POSE_STAMPED, TWIST_STAMPED}


def normalize_type(msgtype: str) -> str:
    """``"sensor_msgs/JointState"`` or ``"sensor_msgs/msg/JointState"`` -> the ``/msg/`` form."""
    parts = msgtype.split("/")
    return f"{parts[0]}/msg/{parts[1]}" if len(parts) == 2 else msgtype


@lru_cache(maxsize=1)
def typestore() -> Any:
    """The rosbags type store of ROS 2 Humble (these message types are the same in every ROS 2 release)."""
    typesys = require("rosbags.typesys")
    return typesys.get_typestore(typesys.Stores.ROS2_HUMBLE)


def _attr(msg: Any, path: str) -> Any:
    for name in path.split("."):
        msg = getattr(msg, name)
    return msg


def field_values(msg: Any, msgtype: str, field: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """The float values of ``field`` in ``msg`` and their column names (joint names for JointState)."""
    path, names = FIELDS[msgtype][field]
    value = _attr(msg, path)
    if msgtype == JOINT_STATE:
        values = np.asarray(value, dtype=np.float64).reshape(-1)
        joints = tuple(msg.name)
        if values.size == 0:  # JointState leaves unmeasured fields empty
            values = np.full(len(joints), np.nan)
        if values.size != len(joints):
            raise InvalidArgumentError(field, f"JointState has {len(joints)} names but {values.size} values")
        return values, joints
    if msgtype == FLOAT64_ARRAY:
        values = np.asarray(value, dtype=np.float64).reshape(-1)
        return values, tuple(str(i) for i in range(values.size))
    return np.array([float(getattr(value, n)) for n in names]), names


def stamp_ns(msg: Any) -> int:
    """``header.stamp`` in nanoseconds."""
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _header(ns: int, frame_id: str = "") -> Any:
    types = typestore().types
    stamp = types["builtin_interfaces/msg/Time"](sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def joint_state(ns: int, names: Any, position: Any = (), velocity: Any = (), effort: Any = ()) -> Any:
    """A ``sensor_msgs/JointState`` message stamped ``ns`` (empty arrays for unset fields)."""
    arr = [np.asarray(v, dtype=np.float64).reshape(-1) for v in (position, velocity, effort)]
    return typestore().types[JOINT_STATE](header=_header(ns), name=list(names), position=arr[0],
                                          velocity=arr[1], effort=arr[2])


def float64_array(values: Any) -> Any:
    """A ``std_msgs/Float64MultiArray`` with an empty layout (a flat vector)."""
    types = typestore().types
    layout = types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    return types[FLOAT64_ARRAY](layout=layout, data=np.asarray(values, dtype=np.float64).reshape(-1))


def matrix_array(matrix: np.ndarray) -> Any:
    """A ``std_msgs/Float64MultiArray`` holding a row-major matrix, with its two layout dimensions."""
    types = typestore().types
    rows, cols = matrix.shape
    dim = types["std_msgs/msg/MultiArrayDimension"]
    layout = types["std_msgs/msg/MultiArrayLayout"](
        dim=[dim(label="rows", size=rows, stride=rows * cols), dim(label="cols", size=cols, stride=cols)],
        data_offset=0)
    return types[FLOAT64_ARRAY](layout=layout, data=np.ascontiguousarray(matrix, dtype=np.float64).reshape(-1))


def pose_stamped(ns: int, position: Any, orientation: Any = (0.0, 0.0, 0.0, 1.0), frame_id: str = "") -> Any:
    """A ``geometry_msgs/PoseStamped``."""
    types = typestore().types
    p, q = [float(v) for v in position], [float(v) for v in orientation]
    pose = types["geometry_msgs/msg/Pose"](position=types["geometry_msgs/msg/Point"](x=p[0], y=p[1], z=p[2]),
                                           orientation=types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1],
                                                                                             z=q[2], w=q[3]))
    return types[POSE_STAMPED](header=_header(ns, frame_id), pose=pose)


def twist_stamped(ns: int, linear: Any, angular: Any = (0.0, 0.0, 0.0), frame_id: str = "") -> Any:
    """A ``geometry_msgs/TwistStamped``."""
    types = typestore().types
    v3 = types["geometry_msgs/msg/Vector3"]
    lin, ang = [float(v) for v in linear], [float(v) for v in angular]
    twist = types["geometry_msgs/msg/Twist"](linear=v3(x=lin[0], y=lin[1], z=lin[2]),
                                             angular=v3(x=ang[0], y=ang[1], z=ang[2]))
    return types[TWIST_STAMPED](header=_header(ns, frame_id), twist=twist)


def imu(ns: int, orientation: Any, angular_velocity: Any, linear_acceleration: Any, frame_id: str = "") -> Any:
    """A ``sensor_msgs/Imu`` (covariances zero: unknown)."""
    types = typestore().types
    v3, quat = types["geometry_msgs/msg/Vector3"], types["geometry_msgs/msg/Quaternion"]
    q, w, a = ([float(x) for x in v] for v in (orientation, angular_velocity, linear_acceleration))
    zeros = np.zeros(9)
    return types[IMU](header=_header(ns, frame_id), orientation=quat(x=q[0], y=q[1], z=q[2], w=q[3]),
                      orientation_covariance=zeros, angular_velocity=v3(x=w[0], y=w[1], z=w[2]),
                      angular_velocity_covariance=zeros, linear_acceleration=v3(x=a[0], y=a[1], z=a[2]),
                      linear_acceleration_covariance=zeros)


def serialize(msg: Any) -> bytes:
    """CDR bytes of a message (ROS 2 wire format)."""
    return bytes(typestore().serialize_cdr(msg, msg.__msgtype__))


def deserialize(data: bytes, msgtype: str) -> Any:
    """Decode CDR bytes as ``msgtype``; raises ``ValueError`` on malformed data."""
    try:
        return typestore().deserialize_cdr(data, normalize_type(msgtype))
    except Exception as exc:  # rosbags raises several types (struct.error, IndexError, SerdeError) on bad bytes
        raise ValueError(f"cannot decode {len(data)} bytes as {msgtype}: {type(exc).__name__}: {exc}") from exc


def msgdef(msgtype: str) -> str:
    """The ``ros2msg`` schema text of ``msgtype`` (what MCAP files and Foxglove read)."""
    return typestore().generate_msgdef(normalize_type(msgtype), ros_version=2)[0]
