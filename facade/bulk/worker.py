"""The in-process export worker: runs queued jobs with a concurrency bound, and on start
resumes every job a previous process left queued, running or paused (from its checkpoints).

It only schedules; ExportRunner does the work and JobStore holds the state. A deployment of
several processes replaces it with the job queue (facade/jobs.py), whose workers call the
same `ExportRunner.run(job_id)`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from facade.bulk.runner import ExportRunner, where
from facade.bulk.store import JobStore

log = logging.getLogger("facade.bulk")


class ExportScheduler(Protocol):
    """Who runs exports: this in-process worker, or a job queue (facade/jobs.py)."""

    async def start(self) -> None: ...
    async def submit(self, job_id: str) -> None: ...
    def cancel(self, job_id: str) -> None: ...
    async def stop(self) -> None: ...


class ExportWorker:
    def __init__(self, store: JobStore, runner: ExportRunner, concurrency: int):
        self.store = store
        self.runner = runner
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.started = False

    async def start(self) -> None:
        self.started = True
        for job in self.store.active_jobs():
            await self.submit(job.id)

    async def submit(self, job_id: str) -> None:
        if not self.started or job_id in self._tasks:
            return
        task = asyncio.get_running_loop().create_task(self._run(job_id))
        self._tasks[job_id] = task

    async def _run(self, job_id: str) -> None:
        try:
            async with self._slots:
                await self.runner.run(job_id)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the message may quote a record: not logged
            log.error(
                "export %s stopped unexpectedly: %s at %s",
                job_id,
                type(error).__name__,
                where(error),
            )
        finally:
            self._tasks.pop(job_id, None)

    def cancel(self, job_id: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()

    async def wait(self, job_id: str) -> None:
        """Until the job's current run ends (tests and the benchmark)."""
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def stop(self) -> None:
        """Stop running jobs where they are; their checkpoints let the next start resume."""
        self.started = False
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
