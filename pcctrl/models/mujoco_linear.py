"""``linearized_mujoco_model``: a MuJoCo env linearised at a state, as a linear-Gaussian model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import InvalidArgumentError
from .linear_gaussian import LinearGaussianModel


def _std(value: float | Sequence[float], size: int, name: str) -> np.ndarray:
    std = np.broadcast_to(np.asarray(value, dtype=np.float64), (size,)).copy()
    if not np.all(np.isfinite(std)) or np.any(std < 0):
        raise InvalidArgumentError(name, f"must be finite and >= 0, got {value!r}")
    return std


def linearized_mujoco_model(env: object, observed: Sequence[int], *, obs_noise_std: float | Sequence[float],
                            process_noise_std: float | Sequence[float], qpos: Sequence[float] | None = None,
                            qvel: Sequence[float] | None = None, eps: float = 1e-6,
                            dtype: torch.dtype = torch.float64) -> LinearGaussianModel:
    """The env's dynamics linearised at ``(qpos, qvel)`` (default: the model's rest pose, at rest).

    ``env`` is a Gymnasium MuJoCo env (or its wrapper); its state is ``[qpos, qvel]`` (hinge and
    slide joints only: ``nq == nv``), one env step is ``frame_skip`` MuJoCo steps with the action
    (``ctrl``) held. ``A`` and ``B`` are central differences of whole env steps (MuJoCo's own
    integrator, e.g. RK4, which ``mjd_transitionFD`` does not support); the readings are the state entries
    ``observed`` plus ``N(0, obs_noise_std^2)``; ``process_noise_std`` (one per state entry, or
    one for all) stands for what the linearisation misses. The model's state is the deviation
    from the linearisation point, so that point should be an equilibrium under zero control (an
    upright pole at rest); at ``qpos0 = 0`` the deviation is the state itself.
    """
    import mujoco

    base = getattr(env, "unwrapped", env)
    model = getattr(base, "model", None)
    if not isinstance(model, mujoco.MjModel):
        raise InvalidArgumentError("env", f"is not a MuJoCo env (no MjModel), got {type(base).__name__}")
    if model.nq != model.nv or model.na != 0:
        raise InvalidArgumentError("env", f"needs nq == nv and no actuator state, got nq={model.nq}, "
                                          f"nv={model.nv}, na={model.na}")
    n = 2 * model.nv
    observed = list(observed)
    if not observed or any(not 0 <= i < n for i in observed):
        raise InvalidArgumentError("observed", f"must be indices into the {n} state entries, got {observed}")
    x0 = np.concatenate([model.qpos0 if qpos is None else np.asarray(qpos, dtype=np.float64),
                         np.zeros(model.nv) if qvel is None else np.asarray(qvel, dtype=np.float64)])
    if x0.shape != (n,):
        raise InvalidArgumentError("qpos", f"qpos and qvel must have {model.nq} and {model.nv} entries")
    data = mujoco.MjData(model)
    steps = int(getattr(base, "frame_skip", 1))

    def env_step(x: np.ndarray, u: np.ndarray) -> np.ndarray:
        mujoco.mj_resetData(model, data)
        data.qpos[:], data.qvel[:], data.ctrl[:] = x[:model.nq], x[model.nq:], u
        for _ in range(steps):
            mujoco.mj_step(model, data)
        return np.concatenate([data.qpos, data.qvel])

    # Central differences of whole env steps (any integrator, the frame skip included).
    u0 = np.zeros(model.nu)
    A_env = np.stack([(env_step(x0 + d, u0) - env_step(x0 - d, u0)) / (2 * eps) for d in np.eye(n) * eps], 1)
    B_env = np.stack([(env_step(x0, u0 + d) - env_step(x0, u0 - d)) / (2 * eps) for d in np.eye(model.nu) * eps], 1)
    C = np.eye(n)[observed]
    R = _std(obs_noise_std, len(observed), "obs_noise_std") ** 2
    if np.any(R <= 0):
        raise InvalidArgumentError("obs_noise_std", "must be > 0 for every observed entry")
    Q = _std(process_noise_std, n, "process_noise_std") ** 2
    return LinearGaussianModel(A_env, B_env, C, np.diag(Q), np.diag(R), dtype=dtype)
