"""Training jobs: a persistent queue in SQLite, a scheduler process, one worker process per
job, live metrics, cancel, resume, clone and sweeps; task jobs (evaluation, classify-many,
deployment steps) run the same way. The README's "Jobs" section describes them for users;
status.py holds the rules of a job's life."""

from engine.jobs.api import (
    JobError,
    LiveJob,
    QuotaExceeded,
    cancel,
    clone,
    delete,
    get_job,
    job_evaluations,
    job_events,
    job_metrics,
    list_jobs,
    list_tasks,
    live,
    metrics_of,
    read_log,
    resume,
    running_on_cpu,
    submit,
    submit_sweep,
    submit_task,
    validate_config,
    wait,
)
from engine.jobs.health import scheduler_health, start_scheduler_if_needed, worker_state
from engine.jobs.scheduler import ensure_scheduler, scheduler_alive, scheduler_status, serve
from engine.jobs.settings import SchedulerSettings, load_settings
from engine.jobs.status import ACTIVE, ENDED, STATUSES, STOPPED_EARLY
from engine.state.runs import job_dir

__all__ = [
    "ACTIVE", "ENDED", "STATUSES", "STOPPED_EARLY", "JobError", "LiveJob", "QuotaExceeded",
    "SchedulerSettings", "cancel",
    "clone", "delete",
    "ensure_scheduler", "get_job", "job_dir", "job_evaluations", "job_events", "job_metrics",
    "list_jobs", "list_tasks", "live", "metrics_of",
    "load_settings", "read_log", "resume", "running_on_cpu", "scheduler_alive",
    "scheduler_status", "serve",
    "scheduler_health", "start_scheduler_if_needed", "submit", "submit_sweep", "submit_task",
    "validate_config", "wait", "worker_state",
]
