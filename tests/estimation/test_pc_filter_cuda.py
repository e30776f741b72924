"""The PC filter on a GPU gives the CPU's beliefs (skipped without CUDA).

Reference: the same filter on the CPU, where a single filter takes the numpy path; on the GPU
every filter takes the torch path, so this also checks the two paths against each other there.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcctrl.estimation import PCFilter
from pcctrl.models import LinearGaussianModel, pendulum_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def episode(seed: int, steps: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    theta = np.cumsum(rng.normal(scale=0.1, size=steps)) + rng.uniform(-3, 3)
    readings = np.stack((np.cos(theta), np.sin(theta)), -1) + 0.3 * rng.normal(size=(steps, 2))
    readings[rng.random(readings.shape) < 0.1] = np.nan
    return readings, rng.uniform(-2, 2, size=(steps - 1, 1))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 2e-4)])
def test_pendulum_run_on_cuda_matches_cpu(dtype, tol) -> None:
    readings, torques = episode(0)
    model = pendulum_model(0.05, obs_noise_std=0.3, process_noise_std=0.1, dtype=dtype)
    start = (np.array([np.arctan2(0.0, 1.0), 0.0]), np.diag([0.09, 1.0]))
    cpu = PCFilter(model).run(readings, torques, *start)
    gpu_filter = PCFilter(pendulum_model(0.05, obs_noise_std=0.3, process_noise_std=0.1, dtype=dtype).cuda())
    gpu = gpu_filter.run(readings, torques, *start)
    assert gpu.mean.is_cuda and gpu_filter._small is None
    torch.testing.assert_close(gpu.mean.cpu(), cpu.mean, rtol=tol, atol=tol)
    torch.testing.assert_close(gpu.cov.cpu(), cpu.cov, rtol=tol, atol=tol)


def test_batch_of_1024_on_cuda_matches_cpu() -> None:
    rng = np.random.default_rng(1)
    batch, steps = 1024, 20
    angle = rng.uniform(-3, 3, size=batch)
    readings = np.stack((np.cos(angle), np.sin(angle)), -1)[None] + 0.3 * rng.normal(size=(steps, batch, 2))
    torques = rng.uniform(-2, 2, size=(steps - 1, batch, 1))
    mean = np.stack((angle, np.zeros(batch)), -1)
    make = lambda: pendulum_model(0.05, obs_noise_std=0.3, process_noise_std=0.1, dtype=torch.float64)  # noqa: E731
    cpu = PCFilter(make()).run(readings, torques, mean, np.diag([0.09, 1.0]))
    gpu = PCFilter(make().cuda()).run(torch.as_tensor(readings).cuda(), torch.as_tensor(torques).cuda(), mean,
                                      np.diag([0.09, 1.0]))
    torch.testing.assert_close(gpu.mean.cpu(), cpu.mean, rtol=1e-9, atol=1e-9)


def test_linear_filter_on_cuda_is_the_cpu_kalman_filter() -> None:
    rng = np.random.default_rng(2)
    A = np.array([[1.0, 0.1], [0.0, 1.0]])
    model = lambda: LinearGaussianModel(A, np.array([[0.0], [0.1]]), np.eye(2), 0.01, 0.1)  # noqa: E731
    zs, us = rng.normal(size=(50, 2)), rng.normal(size=(49, 1))
    cpu = PCFilter(model()).run(zs, us)
    gpu = PCFilter(model().cuda()).run(zs, us)
    torch.testing.assert_close(gpu.mean.cpu(), cpu.mean, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gpu.cov.cpu(), cpu.cov, rtol=1e-10, atol=1e-12)
