"""Issue 13's bad-input matrix: every public loader, env and runtime input path, one row per case.

Each row asserts the exact exception type and that nothing changed: no code ran (a marker file a
malicious payload would create stays absent), the bad file is untouched, controller and env state
are as before (envs: the following steps equal those of a twin env that never saw the bad action).
The last section checks that save -> load -> identical actions holds for every checkpoint kind.
The divergence rows (SGD and Adam at lr=1e6 for il/fpa/exact/ipc, growing energy, one non-finite
type) and PCNetwork's dtype/empty/complex rows live in tests/core/test_divergence.py; the filter's
in tests/estimation, the ensemble's (the previous model is kept) in tests/models. The core rows here
pin the exact family class of its argument checks.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import safetensors.torch
import torch

import pcctrl.envs  # noqa: F401  (registers the pcctrl/ ids)
from pcctrl.agents.active_inference import ActiveInferenceAgent
from pcctrl.agents.aif_checkpoint import agent_payload
from pcctrl.agents.reflex_agent import ReflexAgent, arm_controller
from pcctrl.agents.results import read_job_file, write_job_file
from pcctrl.checkpoint_io import FIRST_SAFE_RELEASE, read_checkpoint, to_bytes, write_checkpoint
from pcctrl.control.reflex import ReflexController
from pcctrl.envs import ActionDelay, ActionNoise, MaskObservation, ObservationDelay, ObservationNoise, SensorDropout
from pcctrl import PCGraph, PCNetwork, Precision
from pcctrl.errors import (CheckpointError, DTypeError, InvalidActionError, InvalidArgumentError, NotPositiveDefiniteError,
                           NotReadyError, PCError, ShapeError, UnknownNodeError)
from pcctrl.estimation import PCFilter
from pcctrl.models import LinearGaussianModel, pendulum_model
from pcctrl.runtime import (FilterPlannerController, FilterReflexController, LatencyStats, RealtimeController,
                            load_checkpoint, sanitize_observation, save_checkpoint)
from pcctrl.runtime.checkpoint import CHECKPOINT_KIND

TINY_AIF = dict(members=2, hidden=(8, 8), train_steps=5, learning_starts=20, train_freq=20, horizon=3,
                candidates=8, iterations=1, elites=2)


# ---- crafted files -----------------------------------------------------------------------------

class _Payload:
    """Unpickling this runs ``exec`` of code that creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",)


def malicious_pickle(marker: Path, protocol: int) -> bytes:
    """A pickle whose loading would create ``marker``, shaped like an old pcctrl checkpoint."""
    return pickle.dumps({"format": 1, "controller": _Payload(marker), "state": None}, protocol=protocol)


def malicious_torch_zip(marker: Path) -> bytes:
    """A ``torch.save`` archive (the old ActiveInferenceAgent format) whose pickle would create ``marker``."""
    stream = io.BytesIO()
    torch.save({"format": "pcctrl.ActiveInferenceAgent", "x": _Payload(marker)}, stream)
    return stream.getvalue()


def _data_offset(data: bytes) -> int:
    return 8 + struct.unpack("<Q", data[:8])[0]


def tampered_tensor(data: bytes) -> bytes:
    """One byte of the tensor data flipped (the header, and so the hash, unchanged)."""
    start = _data_offset(data)
    assert len(data) > start, "the checkpoint has tensor data"
    out = bytearray(data)
    out[start + (len(data) - start) // 2] ^= 0x01
    return bytes(out)


def tampered_settings(data: bytes) -> bytes:
    """A digit of the JSON settings changed, same length: the file parses, only the hash can tell."""
    end = _data_offset(data)
    header = data[8:end]
    at = header.index(b"pcctrl.settings")
    for i in range(at, len(header)):
        if header[i:i + 1].isdigit():
            digit = b"7" if header[i:i + 1] != b"7" else b"3"
            return data[:8] + header[:i] + digit + header[i + 1:] + data[end:]
    raise AssertionError("no digit in the settings")


def rehashed(kind: str, payload: Any) -> bytes:
    """A well-formed checkpoint (valid hash) whose content is wrong: only validation can refuse it."""
    return to_bytes(kind, payload)


def foreign_safetensors() -> bytes:
    return safetensors.torch.save({"weight": torch.zeros(3)}, metadata={"framework": "pt"})


def newer_format(data: bytes) -> bytes:
    end = _data_offset(data)
    header = json.loads(data[8:end])
    header["__metadata__"]["pcctrl.version"] = "99"
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data[end:]


# ---- valid files of every kind -----------------------------------------------------------------

def _runtime_controller() -> FilterReflexController:
    c = arm_controller(0.001, goal=[0.4, -0.6], iters=3, perception_lr=None, prior_precision=0.5)
    c.reset(np.zeros(2))
    rng = np.random.default_rng(0)
    for _ in range(20):
        c.step(rng.normal(scale=0.2, size=2))
    return c


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("valid")
    save_checkpoint(_runtime_controller(), folder / "runtime.ckpt")
    env = gym.make("pcctrl/ArmReach-v0")
    agent = ReflexAgent(env)
    obs, _ = env.reset(seed=1)
    agent.predict(obs, episode_start=True)
    agent.save(folder / "reflex.ckpt")
    aif = ActiveInferenceAgent("Pendulum-v1", **TINY_AIF)
    aif.learn(25)
    aif.save(folder / "aif.ckpt")
    write_job_file(folder / "job.json", {"env_id": "Pendulum-v1", "agent": "x", "seed": 0},
                   [{"env": "Pendulum-v1", "agent": "x", "seed": 0, "step": 0, "eval_return_mean": -1.5,
                     "eval_return_std": 0.0, "wall_time": 0.25}])
    return {name: (folder / f"{name}.{'json' if name == 'job' else 'ckpt'}").read_bytes()
            for name in ("runtime", "reflex", "aif", "job")}


# loader name -> (load function, kinds of file that are "another kind" for it)
LOADERS: dict[str, Callable[[Path], Any]] = {
    "runtime": load_checkpoint,
    "reflex": lambda path: ReflexAgent.load(path),
    "aif": lambda path: ActiveInferenceAgent.load(path),
    "job": read_job_file,
}
FOREIGN = {"runtime": "reflex", "reflex": "aif", "aif": "runtime", "job": "runtime"}


def _bad_file(case: str, loader: str, valid: dict[str, bytes], marker: Path) -> bytes | None:
    own = valid[loader]
    if case == "malicious-pickle-p4":
        return malicious_pickle(marker, 4)
    if case == "malicious-pickle-p5":
        return malicious_pickle(marker, 5)
    if case == "malicious-torch-zip":
        return malicious_torch_zip(marker)
    if case == "old-format-pickle":
        return pickle.dumps({"format": 1, "controller": {"mu": [0.0]}, "state": None}, protocol=5)
    if case == "truncated-half":
        return own[:len(own) // 2]
    if case == "truncated-last-byte":
        return own[:-1]
    if case == "random-bytes":
        return np.random.default_rng(13).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    if case == "empty":
        return b""
    if case == "missing":
        return None
    if case == "foreign-kind":
        return valid[FOREIGN[loader]]
    if case == "foreign-safetensors":
        return foreign_safetensors()
    if case == "tampered-data":
        if loader == "job":
            return own.replace(b"-1.5", b"-0.5")
        return tampered_tensor(own)
    if case == "tampered-settings":
        if loader == "job":
            return own.replace(b'"step": 0', b'"step": 9')
        return tampered_settings(own)
    if case == "newer-format":
        if loader == "job":
            return own.replace(b'"version": 2', b'"version": 99')
        return newer_format(own)
    raise AssertionError(case)


FILE_CASES = ["malicious-pickle-p4", "malicious-pickle-p5", "malicious-torch-zip", "old-format-pickle",
              "truncated-half", "truncated-last-byte", "random-bytes", "empty", "missing", "foreign-kind",
              "foreign-safetensors", "tampered-data", "tampered-settings", "newer-format"]


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("case", FILE_CASES)
def test_loader_refuses_bad_file(loader: str, case: str, valid_files: dict[str, bytes], tmp_path: Path) -> None:
    marker = tmp_path / "code-ran.txt"
    path = tmp_path / "bad.file"
    content = _bad_file(case, loader, valid_files, marker)
    if content is not None:
        path.write_bytes(content)
    if loader == "job" and case == "missing":  # no job file means "not run yet": compare runs the job
        assert read_job_file(path) is None
        return
    with pytest.raises(CheckpointError) as info:
        LOADERS[loader](path)
    assert type(info.value) is CheckpointError
    assert info.value.path == path and str(path) in str(info.value)
    assert not marker.exists(), "loading ran code from the file"
    if content is None:
        assert not path.exists()
    else:
        assert path.read_bytes() == content, "the loader changed the bad file"
    if case.startswith(("malicious-pickle", "old-format")) and loader != "job":
        assert f"re-save it with pcctrl >= {FIRST_SAFE_RELEASE}" in str(info.value)
    if case == "foreign-kind" and loader != "job":
        assert "checkpoint, expected" in str(info.value)
    if case.startswith("tampered"):
        assert "hash" in str(info.value)


def test_the_payloads_do_run_code_when_unpickled(tmp_path: Path) -> None:
    """The crafted files are real attacks: plain pickle.loads of them creates the marker."""
    marker = tmp_path / "code-ran.txt"
    pickle.loads(malicious_pickle(marker, 5))
    assert marker.read_text() == "code ran"


def test_well_formed_but_invalid_content_is_refused(tmp_path: Path) -> None:
    """A file with a correct hash that describes an impossible controller: the constructors refuse it."""
    good = _runtime_controller().reflex
    from pcctrl.runtime.checkpoint import object_to_tree

    tree = object_to_tree(good)
    tree["data"]["settings"]["dt"] = -1.0
    path = tmp_path / "bad.ckpt"
    path.write_bytes(rehashed(CHECKPOINT_KIND, {"format": 2, "controller": tree}))
    with pytest.raises(CheckpointError, match="invalid ReflexController"):
        load_checkpoint(path)
    tree = {"__object__": "os.system", "data": {}}
    path.write_bytes(rehashed(CHECKPOINT_KIND, {"format": 2, "controller": tree}))
    with pytest.raises(CheckpointError, match="unknown kind 'os.system'"):
        load_checkpoint(path)


def test_compare_refuses_a_damaged_job_file_before_running_anything(tmp_path: Path) -> None:
    from pcctrl.agents import compare
    from pcctrl.agents.registry import register_agent, unregister_agent

    class Zero:
        builds = 0

        def __init__(self, env: gym.Env, seed: int | None = None) -> None:
            Zero.builds += 1

    register_agent("zero-matrix", Zero)
    try:
        out = tmp_path / "run"
        jobs = out / "jobs"
        jobs.mkdir(parents=True)
        bad = jobs / "Pendulum-v1__zero-matrix__seed0.json"
        bad.write_text('{"job": {"env_id": "Pendulum-v1"}, "rows": [')
        with pytest.raises(CheckpointError, match="truncated or not JSON"):
            compare(envs="Pendulum-v1", agents=["zero-matrix"], seeds=1, total_timesteps=10, eval_every=10,
                    eval_episodes=1, out_dir=out, workers=0, progress=False, check_agents=False)
        assert Zero.builds == 0 and not (out / "results.csv").exists()
        assert bad.read_text() == '{"job": {"env_id": "Pendulum-v1"}, "rows": ['
    finally:
        unregister_agent("zero-matrix")


def test_saving_an_unsupported_controller_writes_nothing(tmp_path: Path) -> None:
    class Plan:
        def plan(self, mean: np.ndarray) -> np.ndarray:
            return np.zeros(1)

    model = LinearGaussianModel(np.eye(1), np.eye(1), np.eye(1), 0.1, 0.1)
    planner = FilterPlannerController(PCFilter(model), Plan())
    with pytest.raises(CheckpointError, match="cannot be saved yet"):
        save_checkpoint(planner, tmp_path / "p.ckpt")
    with pytest.raises(CheckpointError, match="custom clock"):
        save_checkpoint(RealtimeController(_runtime_controller(), clock=lambda: 0.0), tmp_path / "p.ckpt")
    with pytest.raises(CheckpointError, match="not data"):
        write_checkpoint(tmp_path / "p.ckpt", "x", {"f": print})
    assert list(tmp_path.iterdir()) == []


# ---- envs: NaN/inf/complex/wrong-size actions ---------------------------------------------------

ENV_MAKERS: dict[str, Callable[[], gym.Env]] = {
    "LinearTracking": lambda: gym.make("pcctrl/LinearTracking-v0"),
    "NoisyPendulum": lambda: gym.make("pcctrl/NoisyPendulum-v0", process_noise_std=0.1),
    "ArmReach": lambda: gym.make("pcctrl/ArmReach-v0"),
    "PartialInvertedPendulum": lambda: gym.make("pcctrl/PartialInvertedPendulum-v0"),
    "ActionDelay": lambda: ActionDelay(gym.make("pcctrl/LinearTracking-v0"), delay=2),
    "ActionNoise(ou)": lambda: ActionNoise(gym.make("pcctrl/ArmReach-v0"), std=0.1, kind="ou", tau=0.1, seed=1),
    "observation-wrappers": lambda: ObservationDelay(MaskObservation(SensorDropout(ObservationNoise(
        gym.make("pcctrl/LinearTracking-v0"), std=0.1, seed=2), p=0.3, seed=3), hide=[3]), delay=1),
}


def _bad_action(kind: str, space: gym.spaces.Box) -> Any:
    a = np.zeros(space.shape)
    if kind == "nan":
        a[0] = np.nan
    elif kind == "inf":
        a[-1] = np.inf
    elif kind == "-inf":
        a[0] = -np.inf
    elif kind == "all-nan":
        a[:] = np.nan
    elif kind == "complex":
        return a + 1j
    elif kind == "wrong-size":
        return np.zeros(space.shape[0] + 1)
    elif kind == "text":
        return ["a"] * space.shape[0]
    return a


ACTION_ERRORS = {"nan": InvalidActionError, "inf": InvalidActionError, "-inf": InvalidActionError,
                 "all-nan": InvalidActionError, "complex": DTypeError, "wrong-size": ShapeError,
                 "text": InvalidActionError}


def _rollout(env: gym.Env, actions: list[np.ndarray]) -> list[tuple[Any, ...]]:
    out = []
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out.append((np.asarray(obs).copy(), float(reward), terminated, np.asarray(info["state"]).copy()))
    return out


@pytest.mark.parametrize("kind", sorted(ACTION_ERRORS))
@pytest.mark.parametrize("name", sorted(ENV_MAKERS))
def test_env_refuses_bad_action_and_keeps_its_state(name: str, kind: str) -> None:
    env, twin = ENV_MAKERS[name](), ENV_MAKERS[name]()
    env.reset(seed=5)
    twin.reset(seed=5)
    space = env.action_space
    rng = np.random.default_rng(0)
    actions = [rng.uniform(space.low, space.high).astype(space.dtype) for _ in range(6)]
    _rollout(env, actions[:2])
    _rollout(twin, actions[:2])
    with pytest.raises(ACTION_ERRORS[kind]) as info:
        env.step(_bad_action(kind, space))
    assert type(info.value) is ACTION_ERRORS[kind] and isinstance(info.value, PCError)
    after, reference = _rollout(env, actions[2:]), _rollout(twin, actions[2:])
    for got, want in zip(after, reference):
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1] == want[1] and got[2] == want[2]
        np.testing.assert_array_equal(got[3], want[3])
        assert np.all(np.isfinite(got[3]))


@pytest.mark.parametrize("env_id, bound", [("pcctrl/LinearTracking-v0", 1.0), ("pcctrl/NoisyPendulum-v0", 2.0),
                                           ("pcctrl/ArmReach-v0", 1.0), ("pcctrl/PartialInvertedPendulum-v0", 3.0)])
def test_out_of_bounds_actions_are_clipped_to_the_box(env_id: str, bound: float) -> None:
    """Gymnasium's convention for these envs: a too-large action acts like the bound (documented in docs/envs.md)."""
    big, edge = gym.make(env_id), gym.make(env_id)
    big.reset(seed=2)
    edge.reset(seed=2)
    shape = big.action_space.shape
    for sign in (1.0, -1.0):
        got = big.step(np.full(shape, 50.0 * sign, dtype=np.float32))
        want = edge.step(np.full(shape, bound * sign, dtype=np.float32))
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[4]["state"], want[4]["state"])


@pytest.mark.parametrize("make, error", [
    (lambda: MaskObservation(gym.make("pcctrl/LinearTracking-v0"), hide=-1), TypeError),
    (lambda: MaskObservation(gym.make("pcctrl/LinearTracking-v0"), hide=[-5]), InvalidArgumentError),
    (lambda: MaskObservation(gym.make("pcctrl/LinearTracking-v0"), hide=[4]), InvalidArgumentError),
    (lambda: MaskObservation(gym.make("pcctrl/LinearTracking-v0"), hide=[True]), InvalidArgumentError),
    (lambda: MaskObservation(gym.make("pcctrl/LinearTracking-v0"), hide=[]), InvalidArgumentError),
    (lambda: SensorDropout(gym.make("pcctrl/LinearTracking-v0"), p=float("nan")), InvalidArgumentError),
    (lambda: ActionDelay(gym.make("pcctrl/LinearTracking-v0"), delay=-1), InvalidArgumentError),
    (lambda: ActionNoise(gym.make("pcctrl/LinearTracking-v0"), std=float("nan")), InvalidArgumentError),
    (lambda: ObservationNoise(gym.make("pcctrl/LinearTracking-v0"), std=0.1, kind="ou", tau=0.0),
     InvalidArgumentError),
    (lambda: gym.make("pcctrl/NoisyPendulum-v0", obs_noise_std=-1.0), InvalidArgumentError),
    (lambda: gym.make("pcctrl/LinearTracking-v0", dt=float("inf")), InvalidArgumentError),
    (lambda: gym.make("pcctrl/ArmReach-v0", target_radius_range=(0.4, 0.1)), InvalidArgumentError),
])
def test_env_and_wrapper_arguments(make: Callable[[], Any], error: type) -> None:
    with pytest.raises(error) as info:
        make()
    assert type(info.value) is error


# ---- runtime controllers: complex, empty, wrong-size, non-numeric readings ------------------------

def _reflex() -> ReflexController:
    r = ReflexController([0.3, -0.2], order=3, sensed_orders=1, dt=0.01, iters=2)
    r.reset(np.zeros(2))
    for y in np.random.default_rng(1).normal(size=(5, 2)):
        r.step(y)
    return r


def _planner() -> FilterPlannerController:
    class Gain:
        def plan(self, features: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
            return -0.5 * features[:, :1]

    model = LinearGaussianModel(np.eye(2), np.ones((2, 1)), np.eye(2), 0.1, 0.1)
    c = FilterPlannerController(PCFilter(model), Gain())
    c.reset(np.zeros(2))
    c.step(np.ones(2))
    return c


def _state(c: Any) -> dict[str, np.ndarray]:
    if isinstance(c, FilterPlannerController):
        b = c.filter.belief
        return {"mean": b.mean.numpy().copy(), "cov": b.cov.numpy().copy(), "action": c.action.copy()}
    return {k: np.array(v, copy=True) for k, v in c.get_state().items()}


CONTROLLERS = {"ReflexController": _reflex, "FilterReflexController": _runtime_controller,
               "FilterPlannerController": _planner}
READINGS = {"complex": (lambda n: np.zeros(n) + 0.5j, DTypeError),
            "complex-list": (lambda n: [1 + 1j] * n, DTypeError),
            "empty": (lambda n: np.zeros(0), ShapeError),
            "wrong-size": (lambda n: np.zeros(n + 1), ShapeError),
            "matrix": (lambda n: np.zeros((n, 1)), ShapeError),
            "text": (lambda n: ["x"] * n, InvalidArgumentError),
            "none": (lambda n: None, ShapeError)}


@pytest.mark.parametrize("reading", sorted(READINGS))
@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_controller_refuses_bad_reading_and_keeps_state(name: str, reading: str) -> None:
    c = CONTROLLERS[name]()
    make, error = READINGS[reading]
    before = _state(c)
    with pytest.raises(error) as info:
        c.step(make(c.obs_size))
    assert type(info.value) is error
    after = _state(c)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


def test_sanitize_observation_policy() -> None:
    with pytest.raises(DTypeError):
        sanitize_observation(np.array([1.0, 2j]), 2)
    with pytest.raises(ShapeError):
        sanitize_observation([], 2)
    np.testing.assert_array_equal(sanitize_observation(np.array([1, 2], dtype=np.float32), 2), [1.0, 2.0])
    assert sanitize_observation(np.array([1, 2], dtype=np.float32), 2).dtype == np.float64


# ---- core: PCNetwork / PCGraph / Precision argument checks -----------------------------------------

def _mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


def _graph_with_edge() -> PCGraph:
    g = PCGraph({"a": 3, "b": 2})
    g.connect("a", "b", torch.nn.Linear(3, 2))
    return g


CORE_CASES: dict[str, tuple[Callable[[], Any], type, str]] = {
    "network-negative-T": (lambda: PCNetwork(_mlp(), T=-1), InvalidArgumentError,
                           "^T: must be a non-negative number of inference steps, got -1$"),
    "network-zero-x_lr": (lambda: PCNetwork(_mlp(), x_lr=0.0), InvalidArgumentError, "^x_lr: must be positive, got 0.0$"),
    "network-unknown-algorithm": (lambda: PCNetwork(_mlp(), algorithm="bp"), InvalidArgumentError, "^algorithm: "),
    "network-unknown-loss": (lambda: PCNetwork(_mlp()).train_step(torch.randn(4, 3), torch.randn(4, 2), loss="l1"),
                             InvalidArgumentError, "^loss: must be 'mse'"),
    "graph-no-nodes": (lambda: PCGraph({}), InvalidArgumentError, "^nodes: "),
    "graph-dotted-name": (lambda: PCGraph({"a.b": 2}), InvalidArgumentError, "^node 'a.b': needs a name without '.'"),
    "graph-zero-size": (lambda: PCGraph({"a": 0}), InvalidArgumentError, "positive sizes, got 0$"),
    "graph-unknown-node": (lambda: PCGraph({"a": 3}).connect("a", "z", torch.nn.Linear(3, 2)), UnknownNodeError,
                           "unknown node 'z'"),
    "graph-duplicate-edge": (lambda: _graph_with_edge().connect("a", "b", torch.nn.Linear(3, 2)),
                             InvalidArgumentError, "^edge 'a' -> 'b': already exists$"),
    "graph-edge-wrong-output": (lambda: PCGraph({"a": 3, "b": 2}).connect("a", "b", torch.nn.Linear(3, 4)),
                                ShapeError, r"^edge 'a' -> 'b': the module maps to shape \(4,\)"),
    "precision-unknown-kind": (lambda: Precision("dense"), InvalidArgumentError, "^kind: must be 'scalar'"),  # type: ignore[arg-type]
    "precision-zero-scalar": (lambda: Precision("scalar", 0.0), NotPositiveDefiniteError, "^value: "),
    "precision-negative-diagonal": (lambda: Precision("diagonal", torch.tensor([1.0, -1.0])), NotPositiveDefiniteError,
                                    "positive entries"),
    "precision-non-square": (lambda: Precision("full", torch.ones(2, 3)), ShapeError, r"square matrix, got shape \(2, 3\)"),
    "precision-indefinite": (lambda: Precision("full", torch.tensor([[1.0, 2.0], [2.0, 1.0]])), NotPositiveDefiniteError,
                             "symmetric positive definite"),
}


@pytest.mark.parametrize("case", sorted(CORE_CASES))
def test_core_argument_checks_raise_the_exact_family_class(case: str) -> None:
    make, error, message = CORE_CASES[case]
    with pytest.raises(error, match=message) as info:
        make()
    assert type(info.value) is error
    # The family subclasses the builtin the site raised before, so old ``except`` clauses still work.
    assert isinstance(info.value, KeyError if error is UnknownNodeError else ValueError)


def test_unknown_node_keeps_the_graph_unchanged() -> None:
    g = _graph_with_edge()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    with pytest.raises(UnknownNodeError):
        g.connect("a", "z", torch.nn.Linear(3, 2))
    with pytest.raises(InvalidArgumentError):
        g.connect("a", "b", torch.nn.Linear(3, 2))
    after = g.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", ["FilterPlannerController", "FilterReflexController"])
def test_step_before_reset_is_not_ready(name: str) -> None:
    class Gain:
        def plan(self, features: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
            return -0.5 * features[:, :1]

    if name == "FilterPlannerController":
        model = LinearGaussianModel(np.eye(2), np.ones((2, 1)), np.eye(2), 0.1, 0.1)
        c: Any = FilterPlannerController(PCFilter(model), Gain())
    else:
        c = arm_controller(0.001, goal=[0.4, -0.6], iters=3, perception_lr=None, prior_precision=0.5)
    with pytest.raises(NotReadyError, match=r"call reset\(obs\) before step\(obs\)") as info:
        c.step(np.zeros(c.obs_size))
    assert type(info.value) is NotReadyError and isinstance(info.value, RuntimeError)
    assert not c.reset_done


# ---- save -> load -> identical actions, every checkpoint kind --------------------------------------

def _readings(n: int, size: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    ys = rng.normal(scale=0.2, size=(n, size))
    ys[rng.random((n, size)) < 0.2] = np.nan
    return list(ys)


def _pendulum_filter_reflex() -> FilterReflexController:
    filt = PCFilter(pendulum_model(dtype=torch.float64, process_noise_std=0.1))
    reflex = ReflexController([0.0], order=2, sensed_orders=1, dt=0.05, iters=2, action_low=-2.0, action_high=2.0)
    return FilterReflexController(filt, reflex, sensed=[0], initial_cov=np.diag([0.1, 1.0]))


def _fixed_mode_learnable() -> FilterReflexController:
    model = LinearGaussianModel(np.array([[1.0, 0.1], [0.0, 1.0]]), np.array([[0.0], [0.1]]), np.eye(2),
                                np.diag([1e-3, 1e-2]), 0.05, learnable=True)
    with torch.no_grad():
        model.A.add_(1e-3)  # a "learned" model: values no constructor argument reproduces
    filt = PCFilter(model, mode="fixed", iters=7)
    reflex = ReflexController([0.5, 0.0], order=2, sensed_orders=1, dt=0.1, iters=1, sensor_gain=np.ones((2, 1)))
    return FilterReflexController(filt, reflex, initial_mean=[0.1, 0.0])


RUNTIME_KINDS: dict[str, Callable[[], Any]] = {
    "ReflexController": lambda: ReflexController([0.3, -0.2], order=3, sensed_orders=2, dt=0.01, iters=3,
                                                 max_rate=0.5),
    "FilterReflexController(arm, linear)": lambda: arm_controller(0.001, goal=[0.4, -0.6], iters=3,
                                                                  perception_lr=None),
    "FilterReflexController(pendulum)": _pendulum_filter_reflex,
    "FilterReflexController(fixed, learnable)": _fixed_mode_learnable,
    "RealtimeController": lambda: RealtimeController(arm_controller(0.001, iters=2), budget_s=None,
                                                     stats=LatencyStats(8)),
}


@pytest.mark.parametrize("name", sorted(RUNTIME_KINDS))
def test_runtime_checkpoint_resumes_identically(name: str, tmp_path: Path) -> None:
    c = RUNTIME_KINDS[name]()
    size = c.obs_size if not isinstance(c, RealtimeController) else c.controller.obs_size
    ys = _readings(60, size, 4)
    c.reset(np.zeros(size))
    for y in ys[:30]:
        c.step(y)
    save_checkpoint(c, tmp_path / "c.ckpt")
    restored = load_checkpoint(tmp_path / "c.ckpt")
    assert type(restored) is type(c)
    for y in ys[30:]:
        np.testing.assert_array_equal(restored.step(y), c.step(y))
    if isinstance(c, RealtimeController):
        assert restored.stats.count == c.stats.count and restored.clock is time.perf_counter


def test_reflex_agent_resumes_identically_with_a_callable_goal(tmp_path: Path) -> None:
    def goal(obs: np.ndarray, mean: np.ndarray) -> np.ndarray:
        return np.array([0.2, -0.3])

    env = gym.make("pcctrl/ArmReach-v0")
    agent = ReflexAgent(env, goal=goal)
    obs, _ = env.reset(seed=7)
    action, _ = agent.predict(obs, episode_start=True)
    for _ in range(10):
        obs, *_ = env.step(action)
        action, _ = agent.predict(obs)
    agent.save(tmp_path / "a.ckpt")
    with pytest.raises(InvalidArgumentError, match="pass goal="):
        ReflexAgent.load(tmp_path / "a.ckpt")
    clone = ReflexAgent.load(tmp_path / "a.ckpt", env=env, goal=goal)
    for _ in range(10):
        obs, *_ = env.step(action)
        action, _ = agent.predict(obs)
        np.testing.assert_array_equal(clone.predict(obs)[0], action)


def test_active_inference_agent_resumes_identically_and_reads_its_old_format(tmp_path: Path) -> None:
    agent = ActiveInferenceAgent("Pendulum-v1", **TINY_AIF)
    agent.learn(25)
    obs = np.array([0.0, 1.0, 0.5], dtype=np.float32)
    agent.save(tmp_path / "a.ckpt")
    read_checkpoint(tmp_path / "a.ckpt", "pcctrl.ActiveInferenceAgent")  # the new format, hash checked
    torch.save(agent_payload(agent), tmp_path / "old.pt")  # what pcctrl 0.1 wrote (read with weights_only=True)
    new, old = ActiveInferenceAgent.load(tmp_path / "a.ckpt"), ActiveInferenceAgent.load(tmp_path / "old.pt")
    for _ in range(3):
        a = agent.predict(obs)[0]
        np.testing.assert_array_equal(new.predict(obs)[0], a)
        np.testing.assert_array_equal(old.predict(obs)[0], a)
    buffer = io.BytesIO()
    agent.save(buffer)
    buffer.seek(0)
    assert ActiveInferenceAgent.load(buffer).num_timesteps == agent.num_timesteps


def test_job_file_round_trip_and_legacy_files(tmp_path: Path) -> None:
    identity = {"env_id": "Pendulum-v1", "agent": "x", "seed": 3, "agent_kwargs": {"gain": 0.5}}
    rows = [{"env": "Pendulum-v1", "agent": "x", "seed": 3, "step": s, "eval_return_mean": -1.0 / (s + 1),
             "eval_return_std": 0.1, "wall_time": 0.5} for s in (0, 10)]
    write_job_file(tmp_path / "j.json", identity, rows)
    assert read_job_file(tmp_path / "j.json") == (identity, rows)
    (tmp_path / "legacy.json").write_text(json.dumps({"job": identity, "rows": rows}, indent=1))
    assert read_job_file(tmp_path / "legacy.json") == (identity, rows)
    (tmp_path / "bad.json").write_text(json.dumps({"job": identity, "rows": [dict(rows[0], seed="3")]}))
    with pytest.raises(CheckpointError, match="seed is '3'"):
        read_job_file(tmp_path / "bad.json")
    assert read_job_file(tmp_path / "none.json") is None


def test_checkpoint_format_round_trips_every_value_type(tmp_path: Path) -> None:
    payload = {"f64": np.arange(6.0).reshape(2, 3), "i64": np.arange(3), "bool": np.array([True, False]),
               "empty": np.zeros((0, 4)), "t32": torch.ones(2, dtype=torch.float32),
               "bf16": torch.ones(3, dtype=torch.bfloat16),
               "expanded": torch.zeros(1).expand(3), "scalar": torch.tensor(2.5), "nan": float("nan"),
               "inf": -float("inf"), "tuple": (1, "a", None), "int_keys": {0: {"step": torch.tensor(3.0)}},
               "__dunder": 1, "dtype": torch.float64, "np_scalar": np.float32(0.5), "nested": [[1, 2], {"x": True}]}
    write_checkpoint(tmp_path / "x.ckpt", "test", payload)
    kind, got = read_checkpoint(tmp_path / "x.ckpt", "test")
    assert kind == "test" and set(got) == set(payload)
    for key in ("f64", "i64", "bool", "empty"):
        assert isinstance(got[key], np.ndarray) and got[key].dtype == payload[key].dtype
        np.testing.assert_array_equal(got[key], payload[key])
    for key in ("t32", "bf16", "expanded", "scalar"):
        assert isinstance(got[key], torch.Tensor) and torch.equal(got[key], payload[key])
    assert np.isnan(got["nan"]) and got["inf"] == -np.inf and got["tuple"] == (1, "a", None)
    assert torch.equal(got["int_keys"][0]["step"], torch.tensor(3.0)) and got["__dunder"] == 1
    assert got["dtype"] is torch.float64 and got["np_scalar"] == 0.5 and got["nested"] == [[1, 2], {"x": True}]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ---- conventions ---------------------------------------------------------------------------------

def test_python_m_pcctrl_matches_the_pcctrl_script() -> None:
    script = shutil.which("pcctrl", path=str(Path(sys.executable).parent)) or shutil.which("pcctrl")
    if script is None:
        pytest.skip("the pcctrl console script is not installed in this environment")
    env = {**os.environ, "COLUMNS": "100"}
    module = subprocess.run([sys.executable, "-m", "pcctrl", "--help"], capture_output=True, text=True, env=env,
                            check=True, timeout=120)
    console = subprocess.run([script, "--help"], capture_output=True, text=True, env=env, check=True, timeout=120)
    assert module.stdout == console.stdout
    assert "compare" in module.stdout


def test_compare_function_and_module_no_longer_share_a_name() -> None:
    import importlib

    import pcctrl.agents as agents

    assert callable(agents.compare) and agents.compare.__module__ == "pcctrl.agents.comparison"
    importlib.import_module("pcctrl.agents.comparison")
    assert callable(agents.compare)  # importing the module does not replace the function
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("pcctrl.agents.compare")
