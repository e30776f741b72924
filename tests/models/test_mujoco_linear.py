"""linearized_mujoco_model against closed forms, and the Kalman belief it gives PartialInvertedPendulum."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import pcctrl.envs  # noqa: F401
from pcctrl import PCFilter
from pcctrl.errors import InvalidArgumentError
from pcctrl.models import linearized_mujoco_model

mujoco = pytest.importorskip("mujoco")

_SLIDER = """
<mujoco>
  <option timestep="0.01" integrator="Euler" gravity="0 0 0"/>
  <worldbody>
    <body>
      <joint name="x" type="slide" axis="1 0 0" damping="0"/>
      <geom type="sphere" size="0.1" mass="2"/>
    </body>
  </worldbody>
  <actuator><motor joint="x" gear="3"/></actuator>
</mujoco>
"""


class _Env:
    """The two attributes the function reads from a Gymnasium MuJoCo env."""

    def __init__(self, xml: str, frame_skip: int) -> None:
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.frame_skip = frame_skip


def test_slider_matches_the_closed_form_of_semi_implicit_euler():
    env = _Env(_SLIDER, frame_skip=4)
    m, h, k, gear = 2.0, 0.01, 4, 3.0
    model = linearized_mujoco_model(env, [0], obs_noise_std=0.1, process_noise_std=0.0)
    # Per substep: v' = v + h u gear / m, x' = x + h v' (MuJoCo's Euler is semi-implicit).
    a = np.array([[1.0, h], [0.0, 1.0]])
    b = np.array([[h * h * gear / m], [h * gear / m]])
    A, B = np.eye(2), np.zeros((2, 1))
    for _ in range(k):
        A, B = a @ A, a @ B + b
    assert np.allclose(model.A.numpy(), A, atol=1e-8)
    assert np.allclose(model.B.numpy(), B, atol=1e-8)
    assert torch.equal(model.C, torch.tensor([[1.0, 0.0]], dtype=torch.float64))


def test_cartpole_linearisation_is_unstable_upright_and_pushes_the_pole_back():
    env = gym.make("pcctrl/PartialInvertedPendulum-v0")
    model = linearized_mujoco_model(env, [0, 1], obs_noise_std=0.01, process_noise_std=0.0)
    A, B = model.A.numpy(), model.B.numpy()
    assert np.abs(np.linalg.eigvals(A)).max() > 1.0  # the upright pole falls
    assert B[2, 0] > 0 and B[3, 0] < 0  # pushing the cart right tips the pole left


def test_kalman_belief_estimates_velocities_far_better_than_differencing_readings():
    env = gym.make("pcctrl/PartialInvertedPendulum-v0")
    model = linearized_mujoco_model(env, [0, 1], obs_noise_std=0.01, process_noise_std=(1e-4, 1e-4, 0.01, 0.02))
    rng = np.random.default_rng(0)
    errors, differences = [], []
    for episode in range(4):
        obs, info = env.reset(seed=episode)
        filt = PCFilter(model)
        filt.reset(torch.tensor([[obs[0], obs[1], 0.0, 0.0]]), torch.diag(torch.full((4,), 1e-4))[None])
        previous = obs
        for _ in range(150):
            action = np.clip([obs[0] + 10 * obs[1] + rng.normal(0, 0.3)], -3, 3)
            obs, _, terminated, _, info = env.step(action)
            belief = filt.update(torch.tensor(obs)[None], torch.tensor(action)[None])
            errors.append(np.asarray(belief.mean)[0, 2:] - info["state"][2:])
            differences.append((obs - previous) / 0.04 - info["state"][2:])
            previous = obs
            if terminated:
                break
    rmse = np.sqrt(np.mean(np.square(errors), 0))
    rmse_diff = np.sqrt(np.mean(np.square(differences), 0))
    assert np.all(rmse < 0.25 * rmse_diff), (rmse, rmse_diff)


def test_bad_arguments_raise():
    with pytest.raises(InvalidArgumentError, match="env"):
        linearized_mujoco_model(gym.make("Pendulum-v1"), [0], obs_noise_std=0.1, process_noise_std=0.0)
    env = _Env(_SLIDER, frame_skip=1)
    with pytest.raises(InvalidArgumentError, match="observed"):
        linearized_mujoco_model(env, [2], obs_noise_std=0.1, process_noise_std=0.0)
    with pytest.raises(InvalidArgumentError, match="obs_noise_std"):
        linearized_mujoco_model(env, [0], obs_noise_std=0.0, process_noise_std=0.0)
    with pytest.raises(InvalidArgumentError, match="process_noise_std"):
        linearized_mujoco_model(env, [0], obs_noise_std=0.1, process_noise_std=-1.0)
