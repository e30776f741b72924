"""ActiveInferenceAgent: SB3 shape, save/load, evaluate_policy, partial observability, bad inputs."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

import pcctrl.envs  # noqa: F401  (registers pcctrl/ ids)
from pcctrl.agents.active_inference import ActiveInferenceAgent
from pcctrl.agents.aif_config import AIFConfig, default_config

TINY = dict(members=2, hidden=(16, 16), train_steps=20, learning_starts=30, train_freq=30, horizon=5,
            candidates=16, iterations=1, elites=4)


class Counter(BaseCallback):
    def __init__(self, stop_at: int | None = None) -> None:
        super().__init__()
        self.calls, self.started, self.stop_at = 0, False, stop_at

    def _on_training_start(self) -> None:
        self.started = True

    def _on_step(self) -> bool:
        self.calls += 1
        assert "dones" in self.locals
        return self.stop_at is None or self.calls < self.stop_at


def test_learn_predict_callbacks_and_logger(tmp_path):
    agent = ActiveInferenceAgent("Pendulum-v1", **TINY)
    agent.set_logger(configure(str(tmp_path), ["csv"]))
    cb = Counter()
    agent.learn(60, callback=cb, log_interval=1)
    assert cb.started and cb.calls == 60 and agent.num_timesteps == 60
    assert len(agent.buffer) == 60 and agent.n_updates > 0
    action, state = agent.predict(np.array([1.0, 0.0, 0.0], dtype=np.float32))
    assert action.shape == (1,) and state is None and -2 <= action[0] <= 2
    batch, _ = agent.predict(np.zeros((3, 3)), episode_start=np.ones(3, bool))
    assert batch.shape == (3, 1)
    stopper = Counter(stop_at=5)
    agent.learn(50, callback=stopper)
    assert agent.num_timesteps == 5


def test_save_load_predict_identical(tmp_path):
    agent = ActiveInferenceAgent("Pendulum-v1", **TINY)
    agent.learn(40)
    obs = np.array([0.0, 1.0, 0.5], dtype=np.float32)
    agent.predict(obs)
    path = tmp_path / "agent.pt"
    agent.save(path)
    loaded = ActiveInferenceAgent.load(path)
    assert loaded.config == agent.config
    for _ in range(3):
        a1, _ = agent.predict(obs)
        a2, _ = loaded.predict(obs)
        np.testing.assert_array_equal(a1, a2)


def test_load_refuses_corrupt_and_mismatched(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable"):
        ActiveInferenceAgent.load(bad)
    agent = ActiveInferenceAgent("Pendulum-v1", **TINY)
    path = tmp_path / "a.pt"
    agent.save(path)
    with pytest.raises(ValueError, match="do not match"):
        ActiveInferenceAgent.load(path, env="MountainCarContinuous-v0")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an ActiveInferenceAgent"):
        ActiveInferenceAgent.load(tmp_path / "other.pt")


def test_evaluate_policy_runs_unchanged():
    agent = ActiveInferenceAgent("Pendulum-v1", **TINY)
    agent.learn(40)
    env = gym.make("Pendulum-v1", max_episode_steps=20)
    mean, std = evaluate_policy(agent, env, n_eval_episodes=2, warn=False)
    assert np.isfinite(mean) and np.isfinite(std) and mean <= 0


def test_noisy_pendulum_plans_on_pc_filter_belief():
    agent = ActiveInferenceAgent("pcctrl/NoisyPendulum-v0", **TINY)
    assert agent.belief_spec is not None and agent.feature_dim == 3
    agent.learn(40)
    feats = agent.buffer.all().obs
    np.testing.assert_allclose(feats[:, 0] ** 2 + feats[:, 1] ** 2, 1.0, rtol=1e-5)
    env = gym.make("pcctrl/NoisyPendulum-v0", max_episode_steps=15)
    mean, _ = evaluate_policy(agent, env, n_eval_episodes=1, warn=False)
    assert np.isfinite(mean)


def test_partial_inverted_pendulum_plans_on_a_kalman_belief_of_the_full_state():
    agent = ActiveInferenceAgent("pcctrl/PartialInvertedPendulum-v0", **TINY)
    assert agent.belief_spec is not None and agent.feature_dim == 4
    assert agent.config.goal == (0.0, 0.0, 0.0, 0.0)  # InvertedPendulum's settings, on the belief
    assert agent.reward_source == "closed_form"  # its reward and termination, on the belief's angle
    agent.learn(40)
    data = agent.buffer.all()
    assert data.obs.shape[1] == 4
    assert float(data.obs[:, :2].abs().max()) < 1.5 and bool(torch.isfinite(data.obs).all())


def test_learned_reward_when_no_closed_form():
    env = gym.make("pcctrl/LinearTracking-v0", max_episode_steps=30)
    agent = ActiveInferenceAgent(env, **TINY)
    assert agent.reward_source == "learned"
    agent.learn(30)
    data = agent.buffer.all()
    pred = agent.reward_model(data.obs, data.actions, data.next_obs)
    assert pred.shape == data.rewards.shape and bool(torch.isfinite(pred).all())


class NaNReward(gym.Wrapper):
    def step(self, action):
        obs, _, term, trunc, info = self.env.step(action)
        return obs, float("nan"), term, trunc, info


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match="Box action space"):
        ActiveInferenceAgent("CartPole-v1")
    agent = ActiveInferenceAgent("Pendulum-v1", **TINY)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        agent.predict(np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        agent.predict(np.array([np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="non-finite reward"):
        ActiveInferenceAgent(NaNReward(gym.make("Pendulum-v1")), **TINY).learn(5)
    with pytest.raises(TypeError, match="unknown AIFConfig field"):
        ActiveInferenceAgent("Pendulum-v1", horizn=3)


def test_defaults_and_determinism():
    assert default_config("MountainCarContinuous-v0").epistemic_weight > 0
    assert default_config("Pendulum-v1") == AIFConfig(learning_starts=100, train_freq=100)
    runs = []
    for _ in range(2):
        agent = ActiveInferenceAgent("Pendulum-v1", **TINY)
        agent.learn(45)
        runs.append(agent.predict(np.array([1.0, 0.0, 0.0]))[0])
    np.testing.assert_array_equal(runs[0], runs[1])


def test_action_repeat_holds_actions_and_stores_k_step_transitions(tmp_path):
    with pytest.raises(ValueError, match="action_repeat"):
        ActiveInferenceAgent("Pendulum-v1", action_repeat=0)
    k = 3
    agent = ActiveInferenceAgent("Pendulum-v1", **TINY, action_repeat=k)
    agent.learn(60)
    # 60 env steps in holds of 3: 20 transitions, each 3 env steps of the unwrapped dynamics.
    assert agent.num_timesteps == 60 and len(agent.buffer) == 60 // k
    data = agent.buffer.all()
    env = gym.make("Pendulum-v1")
    env.reset(seed=0)
    base = env.unwrapped
    theta = float(np.arctan2(float(data.obs[5, 1]), float(data.obs[5, 0])))
    base.state = np.array([theta, float(data.obs[5, 2])])
    total = 0.0
    for _ in range(k):
        obs, reward, *_ = env.step(data.actions[5].numpy())
        total += reward
    np.testing.assert_allclose(obs, data.next_obs[5].numpy(), atol=1e-5)
    np.testing.assert_allclose(total, float(data.rewards[5]), rtol=1e-4)
    # predict plans once per k calls and restarts the count at episode_start.
    obs = np.array([0.0, 1.0, 0.5], dtype=np.float32)
    calls = len(agent._plan_ms)
    actions = [agent.predict(obs, episode_start=np.array([i == 0]))[0] for i in range(2 * k)]
    assert len(agent._plan_ms) == calls + 2
    for i in range(2 * k):
        np.testing.assert_array_equal(actions[i], actions[k * (i // k)])
    agent.predict(obs, episode_start=np.array([True]))
    assert len(agent._plan_ms) == calls + 3
    # save/load keeps the hold: the loaded agent continues the same held action, then plans alike.
    path = tmp_path / "agent.pt"
    agent.save(path)
    loaded = ActiveInferenceAgent.load(path)
    assert loaded.config.action_repeat == k
    for _ in range(2 * k):
        np.testing.assert_array_equal(agent.predict(obs)[0], loaded.predict(obs)[0])
    assert len(loaded._plan_ms) == 2
    mean, _ = evaluate_policy(agent, gym.make("Pendulum-v1", max_episode_steps=12), n_eval_episodes=1, warn=False)
    assert np.isfinite(mean)


def test_config_goal_adds_a_goal_prior_to_the_reward():
    agent = ActiveInferenceAgent("InvertedPendulum-v5", **TINY)
    assert agent.config.goal == (0.0, 0.0, 0.0, 0.0)
    obs = torch.zeros(2, 4)
    nxt = torch.tensor([[0.5, 0.1, 3.0, 3.0], [0.0, 0.3, 0.0, 0.0]])
    value = agent.planner.preference.log_preference(obs, torch.zeros(2, 1), nxt)
    # Alive reward 1 (0 once the pole passes 0.2) minus 1/2 (2 x^2 + theta^2); velocities are free.
    torch.testing.assert_close(value, torch.tensor([1 - 0.5 * (2 * 0.25 + 0.01), 0 - 0.5 * 0.09]))
    assert agent.planner.preference.terminated(nxt).tolist() == [False, True]
    with pytest.raises(ValueError, match="goal and goal_precision need 4"):
        ActiveInferenceAgent("InvertedPendulum-v5", goal=(0.0, 0.0), goal_precision=(1.0, 1.0))
    plain = ActiveInferenceAgent("InvertedPendulum-v5", goal=None)
    torch.testing.assert_close(plain.planner.preference.log_preference(obs, torch.zeros(2, 1), nxt),
                               torch.tensor([1.0, 0.0]))


class _TimedEnv(gym.Env):
    """A 5-D point with 3 actions and a stated time step: an id with no family entry."""

    observation_space = spaces.Box(-np.inf, np.inf, (5,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    dt = 0.008

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = self.np_random.uniform(-1, 1, 5).astype(np.float32)
        return self.s.copy(), {}

    def step(self, action):
        self.s = (self.s + self.dt * np.concatenate((action, action[:2]))).astype(np.float32)
        return self.s.copy(), -float(np.square(self.s).sum()), False, False, {}


gym.register("pcctrl-test/Timed-v0", entry_point=_TimedEnv, max_episode_steps=120)


def test_defaults_are_derived_for_an_env_id_with_no_family_entry():
    env = gym.make("pcctrl-test/Timed-v0")
    cfg = default_config("pcctrl-test/Timed-v0", env=env)
    # dt 0.008 s: hold 2 steps (a 0.016 s planner step) and look ahead 1 s, capped at 30 steps.
    assert cfg.action_repeat == round(0.02 / 0.008) == 2
    assert cfg.horizon == min(30, round(1.0 / 0.016)) == 30
    assert cfg.hidden == (64, 64)  # 8 * (5 + 3) = 64
    assert (cfg.candidates, cfg.elites) == (200, 20)  # 3 actions -> ceil(3 / 2) = 2 hundreds
    assert cfg.train_freq == 120
    # Without the env, or for an id with a family entry, nothing is derived.
    assert default_config("pcctrl-test/Timed-v0") == AIFConfig()
    assert default_config("Pendulum-v1", env=gym.make("Pendulum-v1")) == default_config("Pendulum-v1")
    assert default_config("InvertedPendulum-v5", env=gym.make("InvertedPendulum-v5")) == \
        default_config("InvertedPendulum-v5")
    agent = ActiveInferenceAgent("pcctrl-test/Timed-v0", **TINY)
    assert agent.config.horizon == 5 and agent.config.action_repeat == 2  # overrides win over derived ones
    agent.learn(70)
    assert agent.predict(np.zeros(5, np.float32))[0].shape == (3,)


def test_validated_heteroscedastic_decaying_terminal_value_agent_saves_and_loads(tmp_path):
    agent = ActiveInferenceAgent("Pendulum-v1", **TINY, holdout_fraction=0.2, validation_every=10,
                                 heteroscedastic=True, epistemic_weight=0.5, epistemic_schedule="disagreement",
                                 terminal_value=True, value_hidden=(16,), value_train_steps=20)
    agent.learn(100)
    report = agent.learner.last_report
    assert report is not None and report.nll <= report.previous_nll
    assert agent.planner.terminal_value is not None
    first, last = agent.learner.epistemic.first, agent.learner.epistemic.last
    assert first is not None and agent.planner.epistemic_weight == pytest.approx(0.5 * min(1.0, last / first))
    obs = np.array([0.0, 1.0, 0.5], dtype=np.float32)
    agent.predict(obs)
    agent.save(tmp_path / "agent.pt")
    loaded = ActiveInferenceAgent.load(tmp_path / "agent.pt")
    assert loaded.planner.epistemic_weight == agent.planner.epistemic_weight
    assert loaded.learner.ensemble.n_fits == agent.learner.ensemble.n_fits
    for _ in range(3):
        np.testing.assert_array_equal(agent.predict(obs)[0], loaded.predict(obs)[0])


def test_diverging_refit_keeps_the_agents_model_and_warns():
    agent = ActiveInferenceAgent("Pendulum-v1", **TINY)
    agent.learn(40)
    before = [t.clone() for t in agent.ensemble.state_dict().values()]
    for group in agent.ensemble.optimizer.param_groups:
        group["lr"] = 1e6
    with pytest.warns(RuntimeWarning, match="previous model kept"):
        agent.train_model()
    assert agent.learner.rejected_fits == 1
    for p, q in zip(before, agent.ensemble.state_dict().values()):
        assert torch.equal(p, q)


def test_epistemic_weight_decays_as_the_ensembles_disagreement_falls():
    from pcctrl.agents.epistemic import EpistemicSchedule
    from pcctrl.models.dynamics_ensemble import DynamicsEnsemble

    g = torch.Generator().manual_seed(0)
    s = torch.rand(600, 2, generator=g) * 2 - 1
    a = torch.rand(600, 1, generator=g) * 2 - 1
    nxt = s + 0.3 * torch.sin(3 * s) + 0.2 * a
    ens = DynamicsEnsemble(2, 1, members=4, hidden=(32,), lr=3e-3, seed=0)
    schedule = EpistemicSchedule(0.4, "disagreement", np.array([-1.0]), np.array([1.0]), probes=100, seed=1)
    assert schedule.weight == 0.4  # nothing measured yet
    measured = []
    for k in range(6):
        ens.fit(s, a, nxt, steps=300)
        measured.append(schedule.measure(ens.planning_dynamics(), s, nxt, k))
        assert schedule.weight == pytest.approx(0.4 * measured[-1] / max(measured))
    # D is the members' variance relative to that of the state changes: recompute the last from predict.
    rng = np.random.default_rng([1, 5])
    pick = torch.as_tensor(rng.choice(600, size=100, replace=False))
    acts = torch.as_tensor(rng.uniform(-1.0, 1.0, size=(100, 1)), dtype=torch.float32)
    with torch.no_grad():
        spread = ens.predict(s[pick], acts).mean.var(1, unbiased=False)
    assert measured[-1] == pytest.approx(float((spread / (nxt - s).var(0, unbiased=False)).mean()), rel=1e-4)
    assert schedule.weight < 0.1 * 0.4  # the model has learned the region: exploration has faded
    assert EpistemicSchedule(0.4, "constant", np.array([-1.0]), np.array([1.0])).weight == 0.4


def test_files_without_the_issue_11_entries_still_load(tmp_path):
    from pcctrl.agents.aif_checkpoint import FORMAT, agent_payload
    from pcctrl.checkpoint_io import write_checkpoint

    agent = ActiveInferenceAgent("Pendulum-v1", **TINY)
    agent.learn(40)
    payload = agent_payload(agent)
    # What pcctrl 0.2's main wrote: no learner entry, no buffer insertion count, no new config fields.
    del payload["learner"], payload["buffer"]["added"]
    for name in ("holdout_fraction", "validation_every", "validation_patience", "heteroscedastic",
                 "epistemic_schedule", "terminal_value", "value_hidden", "value_train_steps", "value_discount"):
        del payload["config"][name]
    write_checkpoint(tmp_path / "old.pt", FORMAT, payload)
    loaded = ActiveInferenceAgent.load(tmp_path / "old.pt")
    assert loaded.config == agent.config and loaded.learner.ensemble.n_fits == 1
    obs = np.array([0.0, 1.0, 0.5], dtype=np.float32)
    for _ in range(3):
        np.testing.assert_array_equal(agent.predict(obs)[0], loaded.predict(obs)[0])
