"""Reading ROS 2 bags into gridded arrays: gaps, out-of-order stamps, joint order, every supported type."""

from __future__ import annotations

import numpy as np
import pytest

from io_helpers import ROS_REASON

pytest.importorskip("rosbags", reason=ROS_REASON)

from pcctrl.errors import InvalidArgumentError  # noqa: E402
from pcctrl.io import BagWriter, TopicSpec, read_bag  # noqa: E402
from pcctrl.io import messages as m  # noqa: E402

T0 = 1_000_000_000_000
DT_NS = 10_000_000  # 10 ms grid


def _joint_bag(path, storage):
    """JointState at steps 0..9 with 3 and 7 missing, 1/2 and 5/6 sent out of order, step 4 in another joint order."""
    order = [0, 2, 1, 4, 6, 5, 8, 9]
    with BagWriter(path, storage) as bag:
        for i, k in enumerate(order):
            ns = T0 + k * DT_NS + (k % 3) * 1_000_000  # up to 2 ms jitter: still the nearest grid point
            names = ["elbow", "shoulder"] if k == 4 else ["shoulder", "elbow"]
            pos = np.array([k, -k], float) if k != 4 else np.array([-k, k], float)
            bag.write("/joint_states", m.joint_state(ns, names, pos, pos * 10), T0 + i * 777)  # log time: arrival order
    return order


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_gaps_and_out_of_order_stamps_land_on_the_grid(tmp_path, storage):
    order = _joint_bag(tmp_path / "bag", storage)
    s = read_bag(tmp_path / "bag", ["/joint_states", "/joint_states:velocity=elbow"], 0.01)
    expected = np.full((10, 2), np.nan)
    for k in order:
        expected[k] = [k, -k]
    np.testing.assert_array_equal(s.arrays["/joint_states"], expected)
    np.testing.assert_array_equal(s.arrays["/joint_states:velocity=elbow"], 10 * expected[:, 1:])
    assert s.columns["/joint_states"] == ("shoulder", "elbow")
    assert s.counts["/joint_states"] == 8 and s.kept["/joint_states"] == 8
    np.testing.assert_allclose(s.times, np.arange(10) * 0.01)
    assert s.start_ns == T0


def test_log_time_stamps_and_nearest_sample_wins(tmp_path):
    with BagWriter(tmp_path / "bag") as bag:
        for ns, value in ((T0, 1.0), (T0 + 4_000_000, 2.0), (T0 + 9_000_000, 3.0), (T0 + 30_000_000, 4.0)):
            bag.write("/cmd", m.float64_array([value, -value]), ns)
    s = read_bag(tmp_path / "bag", ["/cmd"], 0.01)
    # 9 ms is nearer grid point 1 than 4 ms is to point 0 or 1: point 0 keeps 1.0, point 1 gets 3.0.
    np.testing.assert_array_equal(s.arrays["/cmd"][:, 0], [1.0, 3.0, np.nan, 4.0])
    assert s.columns["/cmd"] == ("0", "1") and s.kept["/cmd"] == 3


def test_imu_pose_twist_fields(tmp_path):
    with BagWriter(tmp_path / "bag") as bag:
        for k in range(3):
            ns = T0 + k * DT_NS
            bag.write("/imu", m.imu(ns, [0, 0, k, 1], [k, 2 * k, 3 * k], [0, 0, 9.81]), ns)
            bag.write("/pose", m.pose_stamped(ns, [k, k + 1, k + 2]), ns)
            bag.write("/twist", m.twist_stamped(ns, [k, 0, 0], [0, 0, -k]), ns)
    s = read_bag(tmp_path / "bag", ["/imu:angular_velocity", "/imu:orientation=z,w", "/pose=y", "/twist:angular=z",
                                    "/imu:linear_acceleration"], 0.01)
    k = np.arange(3.0)
    np.testing.assert_array_equal(s.arrays["/imu:angular_velocity"], np.stack([k, 2 * k, 3 * k], 1))
    np.testing.assert_array_equal(s.arrays["/imu:orientation=z,w"], np.stack([k, np.ones(3)], 1))
    np.testing.assert_array_equal(s.arrays["/pose=y"][:, 0], k + 1)
    np.testing.assert_array_equal(s.arrays["/twist:angular=z"][:, 0], -k)
    np.testing.assert_allclose(s.arrays["/imu:linear_acceleration"][:, 2], 9.81)
    np.testing.assert_array_equal(s.stack(["/pose=y", "/twist:angular=z"]), np.stack([k + 1, -k], 1))


def test_missing_joint_in_a_message_is_nan(tmp_path):
    with BagWriter(tmp_path / "bag") as bag:
        bag.write("/js", m.joint_state(T0, ["a", "b"], [1.0, 2.0]), T0)
        bag.write("/js", m.joint_state(T0 + DT_NS, ["b"], [5.0]), T0 + DT_NS)
    s = read_bag(tmp_path / "bag", ["/js"], 0.01)
    np.testing.assert_array_equal(s.arrays["/js"], [[1.0, 2.0], [np.nan, 5.0]])


def test_bad_requests_raise_clear_errors(tmp_path):
    _joint_bag(tmp_path / "bag", "mcap")
    with pytest.raises(InvalidArgumentError, match="not in the bag"):
        read_bag(tmp_path / "bag", ["/nope"], 0.01)
    with pytest.raises(InvalidArgumentError, match="no field 'angular'"):
        read_bag(tmp_path / "bag", ["/joint_states:angular"], 0.01)
    with pytest.raises(InvalidArgumentError, match="dt"):
        read_bag(tmp_path / "bag", ["/joint_states"], 0.0)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        read_bag(tmp_path / "missing", ["/joint_states"], 0.01)
    with pytest.raises(InvalidArgumentError):
        TopicSpec.parse("/a:position=x,")
    assert str(TopicSpec.parse(" /a:velocity=x,y ")) == "/a:velocity=x,y"
