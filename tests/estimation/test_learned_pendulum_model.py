"""A pendulum model learned by the PC core filters within 1.25x the RMSE of the true model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcctrl.envs.rollout import random_rollout
from pcctrl.estimation import PCFilter
from pcctrl.models import InvalidArgumentError, learn_state_space, pendulum_model

DT, OBS_STD, PROC_STD, STEPS = 0.05, 0.3, 0.1, 200


def record(seed: int) -> dict[str, np.ndarray]:
    """One episode of NoisyPendulum under random torques: true states, actions, readings."""
    run = random_rollout("pcctrl/NoisyPendulum-v0", STEPS, seed, obs_noise_std=OBS_STD, process_noise_std=PROC_STD)
    return {"s": run.states, "a": run.actions, "o": run.observations}


def filter_rmse(model, episodes: list[dict[str, np.ndarray]]) -> float:
    filt = PCFilter(model)
    first = np.stack([e["o"][0] for e in episodes])
    mean = np.stack([np.arctan2(first[:, 1], first[:, 0]), np.zeros(len(episodes))], axis=-1)
    readings = np.stack([e["o"] for e in episodes], axis=1)
    actions = np.stack([e["a"] for e in episodes], axis=1)
    est = filt.run(readings, actions, mean, np.diag([OBS_STD**2, 1.0])).mean.numpy()
    err = est.swapaxes(0, 1) - np.stack([e["s"] for e in episodes])
    err[..., 0] = (err[..., 0] + np.pi) % (2 * np.pi) - np.pi
    return float(np.sqrt(np.mean(np.sum(err**2, axis=-1))))


@pytest.fixture(scope="module")
def data() -> dict[str, list[dict[str, np.ndarray]]]:
    return {"train": [record(100 + i) for i in range(12)], "test": [record(i) for i in range(16)]}


def test_learned_model_filters_within_1_25x_of_true_model(data) -> None:
    train = data["train"]
    model = learn_state_space(np.stack([e["s"] for e in train]), np.stack([e["a"] for e in train]),
                              np.stack([e["o"] for e in train]), angle_dims=(0,), seed=0, dtype=torch.float64)
    energy = model.training_energy["transition"]
    assert energy[-1] < 0.2 * energy[0]  # PC learning made progress
    true = filter_rmse(pendulum_model(DT, obs_noise_std=OBS_STD, process_noise_std=PROC_STD,
                                      dtype=torch.float64), data["test"])
    learned = filter_rmse(model, data["test"])
    assert learned <= 1.25 * true, (learned, true)
    # The learned noise levels come out near the simulator's.
    assert abs(model.process_cov()[1, 1].item() - PROC_STD**2) < 0.3 * PROC_STD**2
    np.testing.assert_allclose(model.obs_cov().diagonal().numpy(), OBS_STD**2, rtol=0.15)


def test_learn_state_space_rejects_bad_shapes() -> None:
    s, a, o = np.zeros((2, 5, 2)), np.zeros((2, 4, 1)), np.zeros((2, 5, 2))
    with pytest.raises(InvalidArgumentError, match="actions"):
        learn_state_space(s, np.zeros((2, 5, 1)), o)
    with pytest.raises(InvalidArgumentError, match="observations"):
        learn_state_space(s, a, np.zeros((2, 4, 2)))
    bad = s.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(InvalidArgumentError, match="states"):
        learn_state_space(bad, a, o)
    with pytest.raises(InvalidArgumentError, match="angle_dims"):
        learn_state_space(s, a, o, angle_dims=(3,))
