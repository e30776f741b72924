"""Agent registry for ``pcctrl compare``: a short name maps to a factory that builds a seeded agent.

A factory is called as ``factory(env, seed=seed, **kwargs)`` and returns an agent in the
Stable-Baselines3 shape (``learn``, ``predict``). Built in: ``sac``, ``td3``, ``ppo`` (SB3,
``MlpPolicy``, CPU unless ``device`` is given) and ``aif`` (``ActiveInferenceAgent``, imported
only when first used).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm

from pcctrl.errors import InvalidArgumentError


class UnknownAgentError(ValueError):
    """An agent name that is not registered."""


class AgentUnavailableError(RuntimeError):
    """A registered agent whose code cannot be imported here."""


@dataclass(frozen=True)
class AgentSpec:
    """A registered agent.

    ``target`` is the class or factory function, or, for lazily imported agents, a
    ``"module:attribute"`` string resolved on first use. ``callback`` says how ``compare``
    evaluates during training: ``True`` passes an SB3 callback to ``learn`` (the agent must call
    ``callback.on_step()`` once per environment step, as SB3 algorithms do), ``False`` calls
    ``learn`` in chunks of ``eval_every`` steps, and ``None`` picks ``True`` exactly for SB3
    algorithms.
    """

    name: str
    target: Callable[..., Any] | str
    callback: bool | None = None

    def resolve(self) -> Callable[..., Any]:
        """The class or factory, importing it if it was registered lazily."""
        if not isinstance(self.target, str):
            return self.target
        module_name, _, attribute = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attribute)
        except (ImportError, AttributeError) as error:
            raise AgentUnavailableError(
                f"agent '{self.name}' is not available: cannot import {self.target} ({error})"
            ) from error

    def uses_callback(self) -> bool:
        """Whether ``compare`` evaluates this agent through an SB3 callback (else: chunked ``learn``)."""
        if self.callback is not None:
            return self.callback
        target = self.resolve()
        return inspect.isclass(target) and issubclass(target, BaseAlgorithm)

    def build(self, env: gym.Env, seed: int, **kwargs: Any) -> Any:
        """A new agent on ``env`` with ``seed`` and the agent's keyword arguments."""
        target = self.resolve()
        if inspect.isclass(target) and issubclass(target, BaseAlgorithm):
            options = {"device": "cpu", "verbose": 0, **kwargs}
            policy = options.pop("policy", "MlpPolicy")
            return target(policy, env, seed=seed, **options)
        return target(env, seed=seed, **kwargs)

    def describe(self) -> str:
        """``module:qualname`` of the target, recorded in ``config.json``."""
        if isinstance(self.target, str):
            return self.target
        module = getattr(self.target, "__module__", "?")
        return f"{module}:{getattr(self.target, '__qualname__', repr(self.target))}"


def _builtin_specs() -> dict[str, AgentSpec]:
    return {
        "sac": AgentSpec("sac", "stable_baselines3:SAC"),
        "td3": AgentSpec("td3", "stable_baselines3:TD3"),
        "ppo": AgentSpec("ppo", "stable_baselines3:PPO"),
        "aif": AgentSpec("aif", "pcctrl.agents.active_inference:ActiveInferenceAgent", callback=True),
    }


_REGISTRY: dict[str, AgentSpec] = _builtin_specs()


def register_agent(
    name: str, cls_or_factory: Callable[..., Any] | str, *, callback: bool | None = None, overwrite: bool = False
) -> AgentSpec:
    """Register an agent under ``name`` for ``compare`` and ``pcctrl compare``.

    ``cls_or_factory`` is an SB3 algorithm class (built with ``"MlpPolicy"``), any class or
    function called as ``cls_or_factory(env, seed=seed, **kwargs)``, or a ``"module:attribute"``
    string imported on first use. See :class:`AgentSpec` for ``callback``. Registering an
    existing name raises unless ``overwrite`` is true.
    """
    if not name or not isinstance(name, str) or "," in name or name != name.strip():
        raise InvalidArgumentError(
            "name", f"an agent name must be a non-empty string without commas or surrounding spaces, got {name!r}")
    if not isinstance(cls_or_factory, str) and not callable(cls_or_factory):
        raise TypeError(f"agent '{name}': expected a class, a factory function or 'module:attribute', got {cls_or_factory!r}")
    if isinstance(cls_or_factory, str) and ":" not in cls_or_factory:
        raise InvalidArgumentError(
            "cls_or_factory", f"agent '{name}': a lazy target must look like 'module:attribute', got {cls_or_factory!r}")
    if name in _REGISTRY and not overwrite:
        raise InvalidArgumentError("name", f"agent '{name}' is already registered (pass overwrite=True to replace it)")
    spec = AgentSpec(name, cls_or_factory, callback)
    _REGISTRY[name] = spec
    return spec


def unregister_agent(name: str) -> None:
    """Remove ``name``; a built-in name returns to its built-in agent."""
    _REGISTRY.pop(name, None)
    builtin = _builtin_specs().get(name)
    if builtin is not None:
        _REGISTRY[name] = builtin


def get_agent(name: str) -> AgentSpec:
    """The spec registered under ``name``; :class:`UnknownAgentError` lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownAgentError(f"unknown agent '{name}'; registered agents: {', '.join(available_agents())}") from None


def available_agents() -> list[str]:
    """Registered agent names, sorted."""
    return sorted(_REGISTRY)
