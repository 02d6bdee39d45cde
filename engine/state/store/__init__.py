"""The SQLite store: the one place SQL runs. `store.connect(home)` opens the workspace database
(schema.py migrates it); each table's queries live in a module of their own and are re-exported
here, so callers write `store.get_job(conn, id)`."""

from engine.state.store.datasets import add_dataset, delete_dataset, get_dataset, list_datasets
from engine.state.store.jobs import (
    add_event,
    count_jobs,
    delete_job,
    get_evaluations,
    get_events,
    get_job,
    get_metrics,
    get_metrics_of,
    insert_job,
    list_jobs,
    put_evaluation,
    put_metrics,
    update_job,
)
from engine.state.store.schema import MIGRATIONS, connect, db_path, opened, statements, transaction
from engine.state.store.users import (
    accounts_exist,
    ensure_user,
    list_users,
    set_user_role,
    user_role,
    users_with_role,
)

__all__ = [
    "MIGRATIONS",
    "accounts_exist",
    "add_dataset",
    "add_event",
    "connect",
    "count_jobs",
    "db_path",
    "delete_dataset",
    "delete_job",
    "ensure_user",
    "get_dataset",
    "get_evaluations",
    "get_events",
    "get_job",
    "get_metrics",
    "get_metrics_of",
    "insert_job",
    "list_datasets",
    "list_jobs",
    "list_users",
    "opened",
    "put_evaluation",
    "put_metrics",
    "set_user_role",
    "statements",
    "transaction",
    "update_job",
    "user_role",
    "users_with_role",
]
