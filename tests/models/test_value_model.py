"""ValueModel: TD fitting and the clip to the returns its rewards allow."""

from __future__ import annotations

import torch

from pcctrl.models.value_model import ValueModel


def _walk(n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """A 1-D walk on [0, 1] that ends with reward 1 past x = 0.9; every other step pays 0."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.rand(n, 1, generator=g)
    next_obs = obs + 0.05
    terminated = next_obs[:, 0] > 0.9
    return obs, terminated.float(), next_obs, terminated.float()


def test_value_never_leaves_the_returns_its_rewards_allow_even_far_from_data():
    obs, rewards, next_obs, terminated = _walk(1000, 0)
    model = ValueModel(1, (32, 32), discount=0.9, lr=3e-3, seed=0)
    model.fit(obs, rewards, next_obs, terminated, rounds=10, steps_per_round=40)
    assert float(model.low) == 0.0 and float(model.high) == 1.0
    far = torch.linspace(-50, 50, 401)[:, None]
    with torch.no_grad():
        raw = model.net(model.input_norm(far))[:, 0] * model.scale
        value = model(far)
        one_step_off = float(model(torch.tensor([[0.88]])))  # the next step pays 1
    assert float(raw.max()) > 1.0 or float(raw.min()) < 0.0  # the MLP alone leaves [0, 1] out there
    assert float(value.min()) >= 0.0 and float(value.max()) <= 1.0
    assert abs(one_step_off - 1.0) < 0.15


def test_bounds_are_the_closed_form_and_grow_with_later_fits():
    model = ValueModel(2, (8,), discount=0.9, seed=0)
    obs = torch.zeros(4, 2)
    model.fit(obs, torch.tensor([-1.0, -0.5, 2.0, 3.0]), obs, torch.tensor([0.0, 0.0, 1.0, 1.0]), rounds=1,
              steps_per_round=1)
    # Non-terminal r / (1 - 0.9) spans [-10, -5]; terminal rewards span [2, 3].
    assert torch.allclose(torch.stack((model.low, model.high)), torch.tensor([-10.0, 3.0]))
    model.fit(obs[:2], torch.tensor([1.0, 0.0]), obs[:2], torch.zeros(2), rounds=1, steps_per_round=1)
    assert torch.allclose(torch.stack((model.low, model.high)), torch.tensor([-10.0, 10.0]))


def test_bounds_survive_a_state_dict_round_trip_and_old_files_load_unclipped():
    obs, rewards, next_obs, terminated = _walk(200, 1)
    model = ValueModel(1, (16,), discount=0.9, seed=0)
    model.fit(obs, rewards, next_obs, terminated, rounds=2, steps_per_round=5)
    copy = ValueModel(1, (16,), discount=0.9, seed=3)
    copy.load_state_dict(model.state_dict())
    far = torch.linspace(-50, 50, 11)[:, None]
    assert torch.equal(copy(far), model(far))
    old = {k: v for k, v in model.state_dict().items() if k not in ("low", "high")}
    legacy = ValueModel(1, (16,), discount=0.9, seed=3)
    legacy.load_state_dict(old)
    assert float(legacy.low) == -float("inf") and float(legacy.high) == float("inf")
