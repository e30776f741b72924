"""NoisyPendulum's ceiling for planning on the belief: the agent's CEM with the *true* dynamics.

Usage: python docs/curves/noisypendulum_oracle.py belief:20:2 true:20:2 [MODE:HORIZON:ITERATIONS ...]
``belief`` plans on the PC filter's belief mean (as the agent does), ``true`` on the true state;
12 episodes from the suite's evaluation seed (10,000), 100 candidates, 10 elites. Prints the mean
return and each episode's.
"""
import sys, numpy as np, torch, gymnasium as gym, pcctrl.envs
from pcctrl.control import EFEPlanner, RewardPreference, known_dynamics
from pcctrl.control.objectives import pendulum_reward
from pcctrl.agents.active_inference import _perception
from pcctrl.agents.families import belief_spec
torch.set_num_threads(1)
def step(o, a):
    th = torch.atan2(o[:, 1], o[:, 0]); w = o[:, 2]
    u = a[:, 0].clamp(-2, 2)
    w2 = (w + (15.0 * torch.sin(th) + 3.0 * u) * 0.05).clamp(-8, 8)
    th2 = th + w2 * 0.05
    return torch.stack((torch.cos(th2), torch.sin(th2), w2), -1)
env = gym.make("pcctrl/NoisyPendulum-v0")
for spec in sys.argv[1:]:
    mode, H, I = spec.split(":"); H, I = int(H), int(I)
    planner = EFEPlanner(known_dynamics(step), RewardPreference(pendulum_reward, 1.0), torch.tensor([-2.0]), torch.tensor([2.0]),
                         horizon=H, candidates=100, iterations=I, elites=10, seed=0)
    per = _perception(env, belief_spec("pcctrl/NoisyPendulum-v0"), torch.device("cpu"))
    R = []
    env.reset(seed=10_000)
    for ep in range(12):
        obs, info = env.reset(); planner.reset(); start = True; tot = 0
        for t in range(200):
            f = per.step(obs[None], np.array([start])); start = False
            if mode == "true":
                s = info["state"]; f = torch.tensor([[np.cos(s[0]), np.sin(s[0]), s[1]]], dtype=torch.float32)
            a = planner.plan(f).numpy()[0]
            per.record_actions(a[None].astype(np.float64))
            obs, r, te, tr, info = env.step(a); tot += r
        R.append(tot)
    print(spec, "mean", round(np.mean(R), 1), [round(x) for x in R], flush=True)
