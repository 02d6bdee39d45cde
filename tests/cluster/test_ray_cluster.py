"""The Ray backend of the queue (issue 20): a Ray cluster simulated on this machine (a head
with no CPUs for jobs and two one-CPU worker nodes, `ray.cluster_utils.Cluster`), the normal
scheduler as a separate process connected to it with STUDIO_CLUSTER=ray://... (Ray Client),
jobs submitted through the normal API. One cluster and one scheduler for the module (Ray's
start is the slow part); one more scheduler, on another workspace, connects with the head's
GCS address (HOST:PORT) instead.

The cluster tests are marked `ray` and skip, with the reason, only when Ray is not installed
or its cluster cannot start here. The first tests need no cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine import jobs
from engine.jobs.backends import check_cluster_address
from engine.jobs.settings import load_settings
from engine.state import store
from engine.state.integrity import verify
from engine.state.runs import job_dir
from testkit import waiting
from testkit.processes import stop

ROOT = Path(__file__).resolve().parents[2]
RUN = {"dataset": "digits", "network": "lenet", "lr": 0.01, "device": "cpu", "epochs": 2,
       "batch_size": 16}
MIB = 1024 * 1024


# --- without a cluster ---------------------------------------------------------------------------


def test_cluster_address_forms_and_one_line_errors(home, monkeypatch):
    assert check_cluster_address(" ray://head:10001 ") == "ray://head:10001"
    assert check_cluster_address("10.0.0.5:6379") == "10.0.0.5:6379"
    assert check_cluster_address("auto") == "auto"
    for bad in ("http://head:80", "ray://", "head", "auto please"):
        with pytest.raises(ValueError, match="STUDIO_CLUSTER must be"):
            check_cluster_address(bad)
    monkeypatch.setenv("STUDIO_CLUSTER", "ray://head:10001")
    monkeypatch.setenv("STUDIO_CLUSTER_CPUS", "2")
    s = load_settings(home)
    assert (s.cluster, s.cluster_cpus) == ("ray://head:10001", 2)
    monkeypatch.setenv("STUDIO_CLUSTER", "nowhere")
    with pytest.raises(ValueError, match="STUDIO_CLUSTER must be"):
        load_settings(home)
    monkeypatch.delenv("STUDIO_CLUSTER")
    assert load_settings(home).cluster is None  # unset: local workers, today's default


def test_local_mode_never_imports_ray_and_a_missing_ray_is_one_line():
    code = ("import sys\n"
            "import engine.jobs.api, engine.jobs.scheduler, engine.jobs.worker\n"
            "assert 'ray' not in sys.modules, 'local mode imported ray'\n"
            "sys.modules['ray'] = None  # as if it were not installed\n"
            "from engine.jobs.backends import open_cluster\n"
            "try:\n"
            "    open_cluster('auto', None, None, 1, print)\n"
            "except RuntimeError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert "\n" not in line and "needs Ray" in line and "requirements-cluster.txt" in line


def test_an_unreachable_cluster_is_one_line_at_once(home):
    pytest.importorskip("ray", reason="Ray is not installed: pip install -r "
                                      "requirements-cluster.txt")
    from engine.jobs.backends import open_cluster

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(RuntimeError, match="nothing answers there") as e:
            open_cluster(address, home, None, 1, print)
        assert address in str(e.value) and "\n" not in str(e.value)


def test_what_the_cluster_takes_and_what_stays_local():
    pytest.importorskip("ray", reason="Ray is not installed: pip install -r "
                                      "requirements-cluster.txt")
    from engine.jobs.backends.ray_cluster import RayCluster

    backend = object.__new__(RayCluster)

    def takes(device="cpu", kind="train", **config):
        return backend.takes(store.Job(id="j", config=config, created=0.0, queued=0.0,
                                       device=device, kind=kind))

    assert takes() and takes("auto") and takes("cuda:0") and takes(init_from="torchvision")
    assert not takes(kind="task") and not takes("host")  # evaluations, exports, builds
    assert not takes(init_from="20261130-000000-abcdef:best")  # needs the head's files
    assert not takes(init_from="/data/weights.pt")
    assert not takes("cuda:0,1") and not takes(devices=2)  # DDP: the local launcher's


def test_a_session_the_client_server_fails_to_start_is_tried_again(monkeypatch):
    """Ray Client's "Initialization failure from server" (its per-client server did not start
    in time on a busy head) gets two more tries; any other connection error is raised at once,
    and the third failure too."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -r "
                                            "requirements-cluster.txt")
    from engine.jobs.backends import ray_cluster

    failures: list[str] = []
    calls, shutdowns, said = [], [], []
    monkeypatch.setattr(ray, "shutdown", lambda: shutdowns.append(1))

    def init(**kwargs):
        calls.append(kwargs["address"])
        if failures:
            raise ConnectionError(failures.pop(0))

    monkeypatch.setattr(ray, "init", init)
    failures[:] = ["Initialization failure from server:\n"]
    ray_cluster._connect("ray://head:10001", said.append, pause_s=0)
    assert len(calls) == 2 and len(shutdowns) == 1
    assert said == ["the Ray cluster at ray://head:10001 failed to start this client's session "
                    "(try 1 of 3); trying again"]
    calls.clear()
    failures[:] = ["Initialization failure from server:\n"] * 3
    with pytest.raises(ConnectionError, match="Initialization failure"):
        ray_cluster._connect("ray://head:10001", said.append, pause_s=0)
    assert len(calls) == 3
    calls.clear()
    failures[:] = ["ray client connection timeout"]
    with pytest.raises(ConnectionError, match="timeout"):
        ray_cluster._connect("ray://head:10001", said.append, pause_s=0)
    assert len(calls) == 1


def test_resources_a_job_asks_the_cluster_for(monkeypatch):
    """CPU jobs take cluster_cpus; GPU jobs (cuda, mixed precision, auto where a GPU is free)
    one GPU; None = wait; a job the cluster can never run is refused in words."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -r "
                                            "requirements-cluster.txt")
    from engine.jobs.backends.ray_cluster import RayCluster

    backend = object.__new__(RayCluster)  # no connection: the cluster's view is set below
    backend.jobs, backend.cpus_per_job = {}, 1
    view = {"total": {"CPU": 2.0}, "free": {"CPU": 2.0}}
    monkeypatch.setattr(ray, "cluster_resources", lambda: view["total"])
    monkeypatch.setattr(ray, "available_resources", lambda: view["free"])

    def asks(device: str, precision: str = "fp32"):
        return backend._resources(store.Job(id="j", config={"precision": precision}, created=0.0,
                                            queued=0.0, device=device))

    assert asks("cpu") == asks("auto") == {"CPU": 1.0, "GPU": 0.0}
    for device, precision in (("cuda:0", "fp32"), ("auto", "fp16")):
        with pytest.raises(ValueError, match="needs a GPU; the Ray cluster has none"):
            asks(device, precision)
    view.update(total={"CPU": 8.0, "GPU": 2.0}, free={"CPU": 8.0, "GPU": 1.0})
    assert asks("auto") == asks("cuda:1") == asks("auto", "bf16") == {"CPU": 1.0, "GPU": 1.0}
    view["free"] = {"CPU": 8.0, "GPU": 0.0}
    assert asks("auto") == {"CPU": 1.0, "GPU": 0.0}  # no GPU free: the CPU, as locally
    assert asks("cuda:0") is None and asks("auto", "fp16") is None  # wait for a GPU
    view["free"] = {"CPU": 0.0, "GPU": 0.0}
    assert asks("cpu") is None
    backend.cpus_per_job = 16
    with pytest.raises(ValueError, match="asks for 16 CPUs"):
        asks("cpu")


# --- a simulated two-node cluster ----------------------------------------------------------------


def wait_until(pred, timeout: float = 240, what: str = "condition"):
    return waiting.wait_until(pred, timeout, what, step=0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head (0 CPUs: it only coordinates) and two worker nodes with 1 CPU each. Its
    processes get a decoy STUDIO_HOME, to show that nodes never open a workspace of the
    head's; they keep their data in STUDIO_NODE_CACHE."""
    try:
        from ray.cluster_utils import Cluster
    except ImportError as e:
        pytest.skip(f"Ray is not installed ({e}): pip install -r requirements-cluster.txt")
    base = tmp_path_factory.mktemp("ray")
    saved = {k: os.environ.get(k) for k in ("STUDIO_HOME", "STUDIO_NODE_CACHE",
                                            "RAY_DEDUP_LOGS")}
    os.environ.update(STUDIO_HOME=str(base / "decoy-home"),
                      STUDIO_NODE_CACHE=str(base / "node-cache"), RAY_DEDUP_LOGS="0")
    with socket.socket() as s:  # a free port for the head's Ray Client server
        s.bind(("127.0.0.1", 0))
        client_port = s.getsockname()[1]
    try:
        c = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "include_dashboard": False, "object_store_memory": 80 * MIB,
            "ray_client_server_port": client_port})
        nodes = [c.add_node(num_cpus=1, object_store_memory=80 * MIB) for _ in range(2)]
        c.wait_for_nodes()
    except Exception as e:  # noqa: BLE001 - the one reason to skip: Ray cannot start here
        pytest.skip(f"a Ray cluster cannot start on this machine: {type(e).__name__}: {e}")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    c.base = base
    c.workers = nodes
    c.client_address = f"ray://127.0.0.1:{client_port}"
    yield c
    c.shutdown()


@contextlib.contextmanager
def scheduler_on(home: Path, address: str, **env_extra: str):
    """A hosted scheduler for `home` with STUDIO_CLUSTER=address, also $STUDIO_HOME here."""
    env = {**os.environ, "STUDIO_HOME": str(home), "STUDIO_CLUSTER": address,
           "STUDIO_SCHEDULER_POLL": "0.2", "STUDIO_GPUS": "0", "STUDIO_CPU_SLOTS": "1",
           **env_extra}
    log = open(home / "scheduler.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "engine.jobs"], cwd=home, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    old = os.environ.get("STUDIO_HOME")
    os.environ["STUDIO_HOME"] = str(home)
    try:
        wait_until(lambda: "Ray cluster at" in (home / "scheduler.log").read_text()
                   or proc.poll() is not None, timeout=120, what="the scheduler to connect")
        assert proc.poll() is None, (home / "scheduler.log").read_text()[-2000:]
        yield home
    finally:
        stop(proc, home)  # and the local evaluation workers it started
        log.close()
        if old is None:
            os.environ.pop("STUDIO_HOME", None)
        else:
            os.environ["STUDIO_HOME"] = old


@pytest.fixture(scope="module")
def head(cluster, digits_home):
    """The head's workspace (with 'digits') and its scheduler, a Ray Client of the cluster."""
    home = (cluster.base / "workspace").resolve()
    shutil.copytree(digits_home, home)
    with scheduler_on(home, cluster.client_address):
        yield home


def events(job_id: str, kind: str) -> list[str]:
    return [e["message"] for e in jobs.job_events(job_id) if e["kind"] == kind]


def node_of(message: str) -> str:
    """The short node id in a 'running on node IP (ID, pid N)' event."""
    return message.split("(")[1].split(",")[0]


def ended(job_id: str) -> dict | None:
    job = jobs.get_job(job_id)
    return job if job["status"] in ("done", "failed", "cancelled", "interrupted") else None


def short_ids(nodes) -> dict[str, object]:
    return {n.node_id[:8]: n for n in nodes}


@pytest.mark.ray
def test_jobs_run_on_both_nodes_and_report_to_the_heads_sqlite(cluster, head):
    ids = [jobs.submit(RUN, name=f"ray {i}", start_scheduler=False) for i in range(2)]
    for job_id in ids:
        wait_until(lambda j=job_id: ended(j), what=f"job {job_id} to end")
    used = set()
    for job_id in ids:
        job = jobs.get_job(job_id)
        assert job["status"] == "done", (job["message"], jobs.read_log(job_id))
        assert job["assigned_device"] == "ray:cpu"
        assert [m["epoch"] for m in jobs.job_metrics(job_id)] == [1, 2]
        assert all(m["val_accuracy"] is not None for m in jobs.job_metrics(job_id))
        [node] = events(job_id, "node")
        used.add(node_of(node))
        run = job_dir(job_id, head)  # checkpoints came back to the head, intact
        for name in ("last.pt", "best.pt", "checkpoints/epoch-0002.pt", "config.json"):
            assert (run / name).exists(), name
        assert verify(run / "last.pt") is True and verify(run / "best.pt") is True
        assert "epoch 2" in (run / "log.txt").read_text().lower()
    # Both one-CPU nodes took one job each; the head (0 CPUs) took none.
    assert used == set(short_ids(cluster.workers))
    # Nodes kept their data in their own caches and never opened a workspace of the head's.
    assert not (cluster.base / "decoy-home" / "studio.db").exists()
    caches = list((cluster.base / "node-cache").iterdir())
    assert len(caches) == 2 and all((c / "studio.db").exists() for c in caches)
    with store.opened(head) as conn:
        pin = store.get_dataset(conn, "digits")["id"]
    assert all((c / "datasets" / pin / "images.npy").exists() for c in caches)
    # The evaluation a finished job queues runs on the head, on the checkpoint that came back.
    [evaluation] = wait_until(lambda: [t for t in jobs.list_tasks(ids[0]) if ended(t["id"])],
                              what="the evaluation of the first job")
    assert evaluation["status"] == "done", evaluation["message"]
    assert evaluation["assigned_device"] == "cpu"  # a local worker, not the cluster
    assert jobs.job_evaluations(ids[0])


@pytest.mark.ray
def test_a_dead_node_sends_its_job_back_to_resume_on_the_other(cluster, head):
    job_id = jobs.submit({**RUN, "epochs": 6}, name="ray kill", start_scheduler=False)
    wait_until(lambda: jobs.job_metrics(job_id) and events(job_id, "node"),
               what="a first epoch on some node")
    first = node_of(events(job_id, "node")[0])
    victim = short_ids(cluster.workers)[first]
    done_before = len(jobs.job_metrics(job_id))
    cluster.remove_node(victim, allow_graceful=False)
    cluster.workers.remove(victim)
    try:
        job = wait_until(lambda: ended(job_id), timeout=300, what="the job to end")
        assert job["status"] == "done", (job["message"], jobs.read_log(job_id))
        assert any(first in m for m in events(job_id, "interrupted"))
        assert events(job_id, "requeued")
        nodes = [node_of(m) for m in events(job_id, "node")]
        assert nodes[0] == first and nodes[-1] != first and len(nodes) == 2
        # It resumed from the last checkpoint the head received, not from scratch.
        starts = events(job_id, "training")
        assert len(starts) == 2 and "from epoch 0" in starts[0]
        resumed_at = int(starts[1].rsplit("from epoch ", 1)[1])
        assert 1 <= done_before <= resumed_at < 6
        assert [m["epoch"] for m in jobs.job_metrics(job_id)] == [1, 2, 3, 4, 5, 6]
        assert jobs.get_job(job_id)["attempts"] == 2
    finally:  # a fresh node in its place, for the tests after this one
        cluster.workers.append(cluster.add_node(num_cpus=1, object_store_memory=80 * MIB))
        cluster.wait_for_nodes()


@pytest.mark.ray
def test_cancel_reaches_a_job_on_a_worker_node(cluster, head):
    job_id = jobs.submit({**RUN, "epochs": 50}, name="ray cancel", start_scheduler=False)
    wait_until(lambda: events(job_id, "node")
               and (jobs.get_job(job_id)["progress"] or {}).get("step"),
               what="the job to report progress from its node")
    node = node_of(events(job_id, "node")[0])
    assert node in short_ids(cluster.workers)  # not the head: cancel crosses machines
    assert jobs.cancel(job_id) == "cancelling"
    job = wait_until(lambda: ended(job_id), timeout=120, what="the cancel to take effect")
    assert job["status"] == "cancelled", job["message"]
    assert "checkpoint saved" in job["message"]
    done = len(jobs.job_metrics(job_id))
    assert done < 50
    assert verify(job_dir(job_id, head) / "last.pt") is True  # the stop's checkpoint came back
    # Resumed by its user, it continues on a node from that checkpoint; cancel it once more.
    jobs.resume(job_id, start_scheduler=False)
    wait_until(lambda: len(events(job_id, "training")) == 2, what="the resumed run to start")
    assert events(job_id, "training")[1].endswith(f"from epoch {done}")
    jobs.cancel(job_id)
    job = wait_until(lambda: ended(job_id), timeout=120, what="the second cancel")
    assert job["status"] == "cancelled"
    assert f"resumed at epoch {done}" in jobs.read_log(job_id)


@pytest.mark.ray
@pytest.mark.parametrize("form", ["gcs", "auto"])
def test_a_scheduler_also_connects_by_gcs_address_or_auto(cluster, digits_home, head, form):
    """HOST:PORT (what `ray start --head` prints) and auto (the cluster this machine is in:
    $RAY_ADDRESS, else the one `ray start` recorded; set here, so that another Ray cluster
    started on this machine meanwhile cannot be the one found)."""
    address = cluster.address if form == "gcs" else "auto"
    other = (cluster.base / f"workspace-{form}").resolve()
    shutil.copytree(digits_home, other)
    with scheduler_on(other, address, RAY_ADDRESS=cluster.address if form == "auto" else ""):
        job_id = jobs.submit({**RUN, "epochs": 1}, name=f"ray {form}", home=other,
                             start_scheduler=False)
        wait_until(lambda: ended(job_id), what=f"job {job_id} to end")
        job = jobs.get_job(job_id)
        assert job["status"] == "done", job["message"]
        assert [m["epoch"] for m in jobs.job_metrics(job_id)] == [1]
        assert node_of(events(job_id, "node")[0]) in short_ids(cluster.workers)
    assert f"Ray cluster at {address}: 3 node(s)" in (other / "scheduler.log").read_text()
