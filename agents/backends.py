"""Where comparison jobs run: this process, a local process pool, or Ray tasks.

Every backend takes the jobs and two callbacks that it calls on the calling thread:
``on_progress(index, steps)`` while jobs train and ``on_done(index, rows_or_error)`` when each
ends. Each job seeds everything itself, so the backend does not change its result.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

import cloudpickle

from pcctrl.errors import InvalidArgumentError

from .compare_job import Job, Row, run_job
from .registry import AgentSpec

Task = tuple[Job, AgentSpec]
OnProgress = Callable[[int, int], None]
OnDone = Callable[[int, "list[Row] | BaseException"], None]
_POLL_SECONDS = 0.2
_worker_queue: Any = None


class RayStartError(RuntimeError):
    """Ray could not be started or reached; no job has run."""


class Backend(Protocol):
    """Runs jobs and reports their progress and ends."""

    def run(self, tasks: Sequence[Task], on_progress: OnProgress, on_done: OnDone) -> None:
        """Run every task; return when all have ended."""


class InProcessBackend:
    """Runs jobs one after another in this process (debuggers and profilers see them)."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads

    def run(self, tasks: Sequence[Task], on_progress: OnProgress, on_done: OnDone) -> None:
        for index, (job, spec) in enumerate(tasks):
            try:
                rows = run_job(job, spec, lambda steps, i=index: on_progress(i, steps), self.threads)
            except Exception as error:  # noqa: BLE001 — reported per job; the others still run
                on_done(index, error)
            else:
                on_done(index, rows)


def _init_pool_worker(progress_queue: Any) -> None:
    global _worker_queue
    _worker_queue = progress_queue


def _pool_task(index: int, payload: bytes, threads: int) -> list[Row]:
    job, spec = cloudpickle.loads(payload)
    return run_job(job, spec, lambda steps: _worker_queue.put((index, steps)), threads)


class LocalBackend:
    """Runs jobs in a pool of ``workers`` fresh (spawned) processes on this machine.

    Agents travel to the workers with cloudpickle: lambdas and classes defined in scripts work;
    a class from a module is imported by name in the worker (the worker gets this ``sys.path``).
    """

    def __init__(self, workers: int, threads: int = 1) -> None:
        if workers < 1:
            raise InvalidArgumentError("workers", "a process pool needs at least one worker")
        self.workers = workers
        self.threads = threads

    def run(self, tasks: Sequence[Task], on_progress: OnProgress, on_done: OnDone) -> None:
        context = multiprocessing.get_context("spawn")
        progress_queue = context.Queue()
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=context,
                                   initializer=_init_pool_worker, initargs=(progress_queue,))
        try:
            pending: dict[Future, int] = {
                pool.submit(_pool_task, index, cloudpickle.dumps(task), self.threads): index
                for index, task in enumerate(tasks)
            }
            while pending:
                finished, _ = wait(pending, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
                _drain(progress_queue, on_progress)
                for future in finished:
                    index = pending.pop(future)
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        error = RuntimeError(
                            "a worker process died (killed, out of memory, or the calling script lacks "
                            "`if __name__ == \"__main__\":` around compare(): spawned workers import the "
                            "script again); see the workers' errors above, or pass workers=0 to run jobs here")
                    on_done(index, error if error is not None else future.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        else:
            pool.shutdown(wait=True)
        finally:
            progress_queue.close()


def _drain(progress_queue: Any, on_progress: OnProgress) -> None:
    while True:
        try:
            index, steps = progress_queue.get_nowait()
        except queue_module.Empty:
            return
        on_progress(index, steps)


def _ray_task(index: int, job: Job, spec: AgentSpec, threads: int, progress_queue: Any) -> list[Row]:
    return run_job(job, spec, lambda steps: progress_queue.put_nowait((index, steps)), threads)


class RayBackend:
    """Runs each job as a Ray task, on the cluster at ``address`` or on a local Ray started for the run.

    A local Ray gets ``workers`` CPUs and this process's ``sys.path``; a cluster's nodes need
    pcctrl (and the modules of user-registered agents) installed. Each task asks for ``threads`` CPUs.
    """

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int = 1) -> None:
        self.address = address
        self.workers = workers
        self.threads = threads

    def run(self, tasks: Sequence[Task], on_progress: OnProgress, on_done: OnDone) -> None:
        import ray
        from ray.util.queue import Queue

        started = False
        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address)
                else:
                    path = os.pathsep.join(entry for entry in sys.path if entry)
                    ray.init(num_cpus=self.workers or os.cpu_count(), include_dashboard=False,
                             object_store_memory=256 * 1024**2, runtime_env={"env_vars": {"PYTHONPATH": path}})
            except Exception as error:  # noqa: BLE001 — Ray raises many kinds; all mean "no cluster"
                where = f"the cluster at {self.address}" if self.address else "a local Ray"
                raise RayStartError(f"cannot start or reach {where}: {type(error).__name__}: {error}") from error
            started = True
        try:
            progress_queue = Queue(actor_options={"num_cpus": 0})
            remote = ray.remote(num_cpus=self.threads, max_retries=0)(_ray_task)
            pending = {remote.remote(index, job, spec, self.threads, progress_queue): index
                       for index, (job, spec) in enumerate(tasks)}
            while pending:
                finished, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_SECONDS)
                for index, steps in progress_queue.get_nowait_batch(progress_queue.qsize()):
                    on_progress(index, steps)
                for reference in finished:
                    index = pending.pop(reference)
                    try:
                        result: list[Row] | BaseException = ray.get(reference)
                    except Exception as error:  # noqa: BLE001 — reported per job; the others still run
                        result = error
                    on_done(index, result)
        finally:
            if started:
                ray.shutdown()


def make_backend(backend: str, workers: int, threads: int, address: str | None) -> Backend:
    """The backend named ``backend`` ("local": pool, or this process when ``workers`` is 0; "ray")."""
    if backend == "ray":
        return RayBackend(address=address, workers=workers or None, threads=threads)
    if backend == "local":
        return InProcessBackend(threads) if workers == 0 else LocalBackend(workers, threads)
    raise InvalidArgumentError("backend", f"unknown backend '{backend}'; choose 'local' or 'ray'")
