"""``fit`` on a LinearTracking bag recovers a model as good as the true one; ``filter`` writes a readable MCAP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from io_helpers import ROS_REASON, record_tracking

pytest.importorskip("rosbags", reason=ROS_REASON)
mcap_reader = pytest.importorskip("mcap.reader", reason=ROS_REASON)

from pcctrl.checkpoint_io import read_checkpoint  # noqa: E402
from pcctrl.cli import main  # noqa: E402
from pcctrl.errors import CheckpointError  # noqa: E402
from pcctrl.io import FittedModel, filter_bag, fit_bag, load_model, read_bag, save_model  # noqa: E402
from pcctrl.io.messages import deserialize  # noqa: E402
from pcctrl.io.mlp_model import MLPStateSpaceModel  # noqa: E402
from pcctrl.models import LinearGaussianModel, batched_jacobian, learn_state_space  # noqa: E402

TOPICS = {"state": ["/state"], "obs": ["/joint_states"], "action": ["/command"]}


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    env = record_tracking(root / "train", 3000, seed=0)
    record_tracking(root / "test", 600, seed=1, storage="sqlite3")
    return root, env.unwrapped


@pytest.fixture(scope="module")
def fitted(bags):
    root, _ = bags
    return fit_bag(root / "train", TOPICS["state"], TOPICS["obs"], TOPICS["action"], 0.1, seed=0)


def _true(env, like: FittedModel) -> FittedModel:
    return FittedModel(LinearGaussianModel(env.A, env.B, env.C, env.Q, env.R), like.initial_mean, like.initial_cov,
                       like.settings)


def test_fitted_model_filters_within_1_1x_of_the_true_model(bags, fitted, tmp_path):
    root, env = bags
    model, report = fitted
    learned = filter_bag(root / "test", model, tmp_path / "learned.mcap")
    true = filter_bag(root / "test", _true(env, model), tmp_path / "true.mcap")
    assert learned.rmse is not None and true.rmse is not None
    assert learned.rmse <= 1.1 * true.rmse, (learned.rmse, true.rmse)
    # Held-out errors: better than doing nothing, and the reading error near the sensor noise (0.1).
    assert report.one_step_rmse < report.persistence_rmse
    assert report.k_step_rmse < report.k_persistence_rmse
    assert report.obs_rmse == pytest.approx(0.1, rel=0.15)
    assert report.train_transitions == 2400 and report.val_transitions == 599
    # The learned noise covariances are near the env's (residual covariances of a good fit).
    np.testing.assert_allclose(np.diag(model.model.obs_cov().numpy()), np.diag(env.R), rtol=0.15)


def test_model_file_round_trip_is_exact_and_safe(fitted, tmp_path):
    model, _ = fitted
    path = save_model(model, tmp_path / "model.pt")
    kind, payload = read_checkpoint(path, "pcctrl.io.model")  # pcctrl's pickle-free format
    assert payload["settings"]["obs_topics"] == ["/joint_states"]
    back = load_model(path)
    s = torch.randn(7, 4, dtype=torch.float64)
    a = torch.randn(7, 2, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(back.model.transition(s, a), model.model.transition(s, a))
        assert torch.equal(back.model.observe(s), model.model.observe(s))
    assert torch.equal(back.model.process_cov(), model.model.process_cov())
    np.testing.assert_array_equal(back.initial_cov, model.initial_cov)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "junk.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")  # a torch/pickle file is refused, never unpickled
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "other.pt")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    (tmp_path / "edited.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "edited.pt")
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "absent.pt")


@pytest.mark.parametrize("angle_dims", [(), (1,)])
def test_closed_form_jacobians_match_autograd(angle_dims):
    rng = np.random.default_rng(0)
    s = rng.normal(size=(2, 30, 3))
    o = np.stack([s[..., 0], np.sin(s[..., 1])], -1)
    model = learn_state_space(s, rng.normal(size=(2, 29, 1)), o, epochs=2, angle_dims=angle_dims,
                              dtype=torch.float64)
    fast = MLPStateSpaceModel.wrap(model)
    x, u = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 1, dtype=torch.float64)
    f, F = fast.linearize_transition(x, u)
    f_ref, F_ref = batched_jacobian(lambda z: model.f(z, u), x)
    g, G = fast.linearize_observation(x)
    g_ref, G_ref = batched_jacobian(model.g, x)
    torch.testing.assert_close(f, f_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(F, F_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(g, g_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(G, G_ref, rtol=0, atol=1e-12)


def test_filter_mcap_reopens_with_topics_counts_and_values(bags, fitted, tmp_path):
    root, _ = bags
    model, _ = fitted
    out = tmp_path / "est.mcap"
    result = filter_bag(root / "test", model, out, png=tmp_path / "est.png")
    steps = 601
    expected = {"/pcctrl/belief/mean": steps, "/pcctrl/belief/std": steps, "/pcctrl/belief/cov": steps,
                "/pcctrl/predicted_obs": steps, "/joint_states": 601, "/state": 601, "/command": 600}
    with open(out, "rb") as fh:
        reader = mcap_reader.make_reader(fh)
        summary = reader.get_summary()
        counts = {summary.channels[c].topic: n for c, n in summary.statistics.channel_message_counts.items()}
        assert counts == expected
        assert {s.encoding for s in summary.schemas.values()} == {"ros2msg"}
        assert {c.message_encoding for c in summary.channels.values()} == {"cdr"}
        means, covs = [], []
        for schema, channel, message in reader.iter_messages(topics=["/pcctrl/belief/mean", "/pcctrl/belief/cov"]):
            msg = deserialize(message.data, schema.name)
            (means if channel.topic.endswith("mean") else covs).append(np.array(msg.data))
            if channel.topic.endswith("cov"):
                assert [d.size for d in msg.layout.dim] == [4, 4]
    np.testing.assert_array_equal(np.stack(means), result.means)
    np.testing.assert_array_equal(np.stack(covs).reshape(-1, 4, 4), result.covs)
    assert (tmp_path / "est.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The output is itself a bag: read back on the same grid.
    again = read_bag(out, ["/pcctrl/belief/mean"], 0.1, stamps="log")
    np.testing.assert_array_equal(again.arrays["/pcctrl/belief/mean"], result.means)


def test_filter_coasts_through_missing_readings(bags, fitted):
    root, env = bags
    model, _ = fitted
    from pcctrl.io import run_filter

    s = read_bag(root / "test", ["/joint_states", "/command"], 0.1)
    obs, act = s.stack(["/joint_states"]), s.stack(["/command"])
    obs[100:120] = np.nan
    act[300] = np.nan
    means, covs = run_filter(_true(env, model), obs, act)
    assert np.isfinite(means).all()
    # Without readings the uncertainty grows, and shrinks back once they return.
    assert covs[119, 0, 0] > 5 * covs[99, 0, 0] and covs[125, 0, 0] < covs[119, 0, 0]


def test_cli_fit_and_filter(bags, tmp_path, capsys):
    root, _ = bags
    model_path = tmp_path / "m.pt"
    assert main(["fit", str(root / "test"), "--state", "/state", "--obs-topic", "/joint_states", "--action-topic",
                 "/command", "--dt", "0.1", "--out", str(model_path), "--epochs", "3", "--window", "10"]) == 0
    assert "one-step state" in capsys.readouterr().out
    assert main(["filter", str(root / "test"), "--model", str(model_path), "--out", str(tmp_path / "e.mcap")]) == 0
    out = capsys.readouterr().out
    assert "/pcctrl/belief/mean: 601 messages" in out and (tmp_path / "e.png").exists()
    assert main(["filter", str(root / "test"), "--model", str(tmp_path / "none.pt"), "--out", "x.mcap"]) == 2
    assert "no such file" in capsys.readouterr().err
