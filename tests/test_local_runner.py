"""Local execution: the Nomad emulator runs raw_exec/exec tasks as real processes."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from nomadmesh import Check, Group, Job, Network, Port, Service, Task
from nomadmesh.cli import _load_commands, cli
from nomadmesh.deploy import NomadClient
from nomadmesh.errors import DeploymentFailed
from nomadmesh.model import Lifecycle, RestartPolicy, Template
from nomadmesh.testing.envoy import eventually
from nomadmesh.testing.local import LocalExecutionCluster, local_cluster

PY = sys.executable


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalExecutionCluster]:
    cluster = local_cluster(tmp_path / "allocs")
    yield cluster
    cluster.stop()


def python_task(name: str, code: str, *args: str, **fields: Any) -> Task:
    return Task(name, driver="raw_exec", config={"command": PY, "args": ["-c", code, *args]},
                **fields)


def batch(name: str, *tasks: Task, **group: Any) -> Job:
    return Job(name, type="batch", datacenters=["dc1"],
               groups=[Group(name, tasks=list(tasks), **group)])


def submit(cluster: LocalExecutionCluster, job: Job) -> None:
    with NomadClient(cluster.nomad.url) as client:
        client.run(job, wait=False)


def only_alloc(cluster: LocalExecutionCluster, job_id: str) -> dict[str, Any]:
    allocs = [a for a in cluster.nomad.snapshot().all("allocs") if a["JobID"] == job_id]
    return allocs[0] if len(allocs) == 1 else {}


def wait_status(cluster: LocalExecutionCluster, job_id: str, *statuses: str,
                timeout: float = 15) -> dict[str, Any]:
    assert cluster.nomad.wait_for(
        lambda: only_alloc(cluster, job_id).get("ClientStatus") in statuses, timeout=timeout), \
        f"{job_id} never reached {statuses}: {only_alloc(cluster, job_id).get('TaskStates')}"
    alloc: dict[str, Any] = requests.get(
        f"{cluster.nomad.url}/v1/allocation/{only_alloc(cluster, job_id)['ID']}", timeout=5).json()
    return alloc


def stdout(cluster: LocalExecutionCluster, alloc_id: str, task: str) -> str:
    response = requests.get(f"{cluster.nomad.url}/v1/client/fs/logs/{alloc_id}",
                            params={"task": task, "type": "stdout", "plain": "true"}, timeout=5)
    response.raise_for_status()
    return response.text


def gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


PRINT_ENV = "import json, os; print(json.dumps(dict(os.environ)))"


def test_a_task_runs_with_nomads_runtime_environment(local: LocalExecutionCluster) -> None:
    job = batch("envjob", python_task("show", PRINT_ENV),
                networks=[Network(ports=[Port("http")])])
    submit(local, job)
    alloc = wait_status(local, "envjob", "complete")
    env = json.loads(stdout(local, alloc["ID"], "show"))
    port = alloc["AllocatedResources"]["Shared"]["Ports"][0]["Value"]
    assert {k: env[k] for k in ("NOMAD_ALLOC_ID", "NOMAD_JOB_NAME", "NOMAD_GROUP_NAME",
                                "NOMAD_TASK_NAME", "NOMAD_PORT_http", "NOMAD_IP_http",
                                "NOMAD_ADDR_http", "NOMAD_HOST_PORT_http")} == {
        "NOMAD_ALLOC_ID": alloc["ID"], "NOMAD_JOB_NAME": "envjob", "NOMAD_GROUP_NAME": "envjob",
        "NOMAD_TASK_NAME": "show", "NOMAD_PORT_http": str(port), "NOMAD_IP_http": "127.0.0.1",
        "NOMAD_ADDR_http": f"127.0.0.1:{port}", "NOMAD_HOST_PORT_http": str(port)}
    alloc_dir = Path(env["NOMAD_ALLOC_DIR"])
    assert (alloc_dir.name, Path(env["NOMAD_TASK_DIR"]), Path(env["NOMAD_SECRETS_DIR"])) == (
        "alloc", alloc_dir.parent / "show" / "local", alloc_dir.parent / "show" / "secrets")


def test_a_dynamic_port_in_use_on_this_machine_is_not_handed_out(
        local: LocalExecutionCluster) -> None:
    busy = socket.socket()
    with contextlib.suppress(OSError):  # something else holds it already: just as busy
        busy.bind(("127.0.0.1", 20000))
    with busy:
        submit(local, batch("ports", python_task("show", PRINT_ENV),
                            networks=[Network(ports=[Port("a"), Port("b")])]))
        alloc = wait_status(local, "ports", "complete")
    ports = [p["Value"] for p in alloc["AllocatedResources"]["Shared"]["Ports"]]
    assert 20000 not in ports and len(set(ports)) == 2


def test_config_args_and_env_are_interpolated(local: LocalExecutionCluster) -> None:
    code = "import os, sys; print(sys.argv[1:], os.environ['GREETING'])"
    task = Task("show", driver="raw_exec", env={"GREETING": "hi from ${NOMAD_TASK_NAME}"},
                config={"command": PY, "args": ["-c", code, "${NOMAD_PORT_http}",
                                                "${attr.unique.network.ip-address}",
                                                "${node.unique.name}", "${meta.team}"]})
    job = batch("interp", task, networks=[Network(ports=[Port("http")])], meta={"team": "mesh"})
    submit(local, job)
    alloc = wait_status(local, "interp", "complete")
    port = alloc["AllocatedResources"]["Shared"]["Ports"][0]["Value"]
    assert stdout(local, alloc["ID"], "show") == (
        f"['{port}', '127.0.0.1', 'local', 'mesh'] hi from show\n")


def test_templates_render_env_keys_and_healthy_service_instances(
        local: LocalExecutionCluster) -> None:
    local.consul.kv_put("config/greeting", "hello")
    local.consul.register("db", service_id="db-1", address="10.0.0.1", port=5432)
    local.consul.register("db", service_id="db-2", address="10.0.0.2", port=5432,
                          checks=[{"CheckID": "db-2-check", "TTL": "10s", "Status": "critical"}])
    data = ('{{ key "config/greeting" }} {{ env "NOMAD_TASK_NAME" }}\n'
            '{{ range service "db" }}{{ .Address }}:{{ .Port }} {{ end }}')
    task = python_task("show", "print(open('local/out.txt').read())",
                       templates=[Template(data=data, destination="local/out.txt")])
    submit(local, batch("tmpl", task))
    alloc = wait_status(local, "tmpl", "complete")
    assert stdout(local, alloc["ID"], "show") == "hello show\n10.0.0.1:5432 \n"


def test_a_template_with_env_true_sets_the_task_environment(
        local: LocalExecutionCluster) -> None:
    local.consul.kv_put("config/level", "debug")
    task = python_task("show", "import os; print(os.environ['LEVEL'])", templates=[
        Template(data='LEVEL={{ key "config/level" }}\n', destination="secrets/app.env",
                 env=True)])
    submit(local, batch("envtmpl", task))
    alloc = wait_status(local, "envtmpl", "complete")
    assert stdout(local, alloc["ID"], "show") == "debug\n"


def test_a_re_rendered_template_restarts_its_task(local: LocalExecutionCluster) -> None:
    local.consul.kv_put("config/version", "v1")
    code = "import time; print(open('local/v.txt').read(), flush=True); time.sleep(60)"
    task = python_task("app", code, templates=[
        Template(data='{{ key "config/version" }}', destination="local/v.txt")])
    submit(local, Job("watched", datacenters=["dc1"], groups=[Group("watched", tasks=[task])]))
    alloc = wait_status(local, "watched", "running")
    local.consul.kv_put("config/version", "v2")
    eventually(lambda: b"v2" in local.runner.logs(alloc["ID"], "app", "stdout"), timeout=10,
               what="the task restarted with the new value")
    events = [e["Type"] for e in only_alloc(local, "watched")["TaskStates"]["app"]["Events"]]
    assert events[-4:] == ["Restart Signaled", "Terminated", "Restarting", "Started"]


def test_lifecycle_runs_prestart_then_sidecars_then_main_then_poststop(
        local: LocalExecutionCluster) -> None:
    tasks = [
        python_task("main", "pass"),
        python_task("after", "pass", lifecycle=Lifecycle(hook="poststop")),
        python_task("sidecar", "import time; time.sleep(60)",
                    lifecycle=Lifecycle(hook="prestart", sidecar=True)),
        python_task("init", "pass", lifecycle=Lifecycle(hook="prestart")),
    ]
    submit(local, batch("order", *tasks))
    alloc = wait_status(local, "order", "complete")
    moments = sorted((e["Time"], e["Type"], task) for task, state in alloc["TaskStates"].items()
                     for e in state["Events"] if e["Type"] in ("Started", "Terminated", "Killed"))
    assert [(kind, task) for _, kind, task in moments] == [
        ("Started", "init"), ("Terminated", "init"), ("Started", "sidecar"), ("Started", "main"),
        ("Terminated", "main"), ("Killed", "sidecar"), ("Started", "after"),
        ("Terminated", "after")]


def test_a_failing_task_is_restarted_then_reported_with_its_exit_code(
        local: LocalExecutionCluster) -> None:
    task = python_task("crash", "import sys; print('boom'); sys.exit(3)")
    job = batch("crashy", task, restart=RestartPolicy(attempts=1, delay="50ms", interval="1m",
                                                      mode="fail"))
    submit(local, job)
    alloc = wait_status(local, "crashy", "failed")
    state = alloc["TaskStates"]["crash"]
    events = [(e["Type"], e.get("ExitCode")) for e in state["Events"]
              if e["Type"] in ("Started", "Terminated", "Restarting", "Not Restarting")]
    assert (state["State"], state["Failed"], state["Restarts"], events) == (
        "dead", True, 1, [("Started", 0), ("Terminated", 3), ("Restarting", 0), ("Started", 0),
                          ("Terminated", 3), ("Not Restarting", 0)])


def test_a_missing_command_is_a_driver_failure(local: LocalExecutionCluster) -> None:
    task = Task("ghost", driver="exec", config={"command": "/nonexistent/bin/app"})
    submit(local, batch("ghost", task, restart=RestartPolicy(attempts=0, mode="fail")))
    alloc = wait_status(local, "ghost", "failed")
    failure = next(e for e in alloc["TaskStates"]["ghost"]["Events"]
                   if e["Type"] == "Driver Failure")
    assert "No such file or directory" in failure["DriverError"]


SERVE = ("import http.server, os; http.server.ThreadingHTTPServer(('127.0.0.1', "
         "int(os.environ['NOMAD_PORT_http'])), http.server.SimpleHTTPRequestHandler)"
         ".serve_forever()")


def web(name: str, code: str = SERVE, path: str = "/") -> Job:
    return Job(name, datacenters=["dc1"], groups=[Group(
        name, networks=[Network(ports=[Port("http")])],
        services=[Service(name=name, port="http", checks=[
            Check(type="http", path=path, interval="1s", timeout="1s")])],
        tasks=[python_task("web", code)])])


def test_a_service_is_healthy_once_its_real_http_check_passes(
        local: LocalExecutionCluster) -> None:
    with NomadClient(local.nomad.url) as client:
        result = client.run(web("web"), timeout=30)
    port = only_alloc(local, "web")["AllocatedResources"]["Shared"]["Ports"][0]["Value"]
    health = requests.get(f"{local.consul.url}/v1/health/service/web", timeout=5).json()
    checks = [c for c in health[0]["Checks"] if c["ServiceID"]]
    assert (result.status, health[0]["Service"]["Port"], [(c["Type"], c["Status"]) for c in checks]
            ) == ("healthy", port, [("http", "passing")])


def test_a_service_whose_check_fails_fails_its_deployment(local: LocalExecutionCluster) -> None:
    local.nomad.timings.healthy_deadline = 2.0
    with NomadClient(local.nomad.url) as client, pytest.raises(DeploymentFailed) as failed:
        client.run(web("broken", path="/missing"), timeout=30)
    assert "unhealthy" in str(failed.value).lower()


def test_docker_tasks_are_unplaceable_with_the_reason(local: LocalExecutionCluster) -> None:
    job = Job("docker-web", datacenters=["dc1"], groups=[Group("web", tasks=[
        Task("web", driver="docker", config={"image": "nginx"})])])
    with NomadClient(local.nomad.url) as client, pytest.raises(DeploymentFailed) as failed:
        client.run(job, timeout=10)
    assert "missing drivers" in str(failed.value)


SPAWN = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"


def test_stopping_a_job_kills_its_process_groups(local: LocalExecutionCluster) -> None:
    submit(local, Job("sleepy", datacenters=["dc1"], groups=[Group("sleepy", tasks=[
        python_task("sleeper", SPAWN)])]))
    wait_status(local, "sleepy", "running")
    groups = local.runner.process_groups()
    with NomadClient(local.nomad.url) as client:
        client.stop("sleepy")
    wait_status(local, "sleepy", "complete")
    assert groups and all(gone(pgid) for pgid in groups)


def test_stopping_the_cluster_leaves_no_process_running(tmp_path: Path) -> None:
    cluster = local_cluster(tmp_path)
    try:
        submit(cluster, Job("sleepy", datacenters=["dc1"], groups=[Group("sleepy", tasks=[
            python_task("sleeper", SPAWN)])]))
        wait_status(cluster, "sleepy", "running")
        groups = cluster.runner.process_groups()
    finally:
        cluster.stop()
    assert groups and all(gone(pgid) for pgid in groups)


def test_logs_command_prints_a_tasks_output(local: LocalExecutionCluster) -> None:
    submit(local, batch("hello", python_task("say", "print('hello from the task')")))
    alloc = wait_status(local, "hello", "complete")
    _load_commands()
    result = CliRunner().invoke(cli, ["logs", "hello", "say"],
                                env={"NOMAD_ADDR": local.nomad.url})
    assert (result.exit_code, result.output) == (
        0, f"==> hello hello {alloc['ID'][:8]} say (stdout)\nhello from the task\n")


def test_a_job_stopped_while_its_sidecar_waits_to_restart_stops_at_once(
        local: LocalExecutionCluster) -> None:
    sidecar = Task("proxy", driver="raw_exec", config={"command": "/nonexistent/proxy"},
                   lifecycle=Lifecycle(hook="prestart", sidecar=True))
    job = Job("stuck", datacenters=["dc1"], groups=[Group(
        "stuck", tasks=[python_task("app", "import time; time.sleep(60)"), sidecar],
        restart=RestartPolicy(attempts=5, delay="30s", interval="5m", mode="fail"))])
    submit(local, job)
    assert local.nomad.wait_for(lambda: any(
        e["Type"] == "Restarting"
        for e in (only_alloc(local, "stuck").get("TaskStates") or {}).get("proxy", {}).get("Events", [])))
    with NomadClient(local.nomad.url) as client:
        client.stop("stuck")
    alloc = wait_status(local, "stuck", "complete", timeout=5)
    assert [alloc["TaskStates"][t]["State"] for t in ("app", "proxy")] == ["dead", "dead"]


TICKS = "import time\nfor i in range(5):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.2)"


def test_logs_follow_streams_until_the_task_is_done(local: LocalExecutionCluster) -> None:
    submit(local, batch("ticker", python_task("tick", TICKS)))
    assert local.nomad.wait_for(lambda: only_alloc(local, "ticker").get("ClientStatus")
                                in ("running", "complete"), timeout=15)
    alloc_id = only_alloc(local, "ticker")["ID"]
    with requests.get(f"{local.nomad.url}/v1/client/fs/logs/{alloc_id}", stream=True,
                      params={"task": "tick", "type": "stdout", "plain": "true",
                              "follow": "true"}, timeout=30) as response:
        text = b"".join(response.iter_content(None)).decode()
    assert text == "".join(f"tick {i}\n" for i in range(5))
    assert only_alloc(local, "ticker")["TaskStates"]["tick"]["State"] == "dead"


def test_logs_origin_and_offset_select_bytes(local: LocalExecutionCluster) -> None:
    submit(local, batch("said", python_task("say", "print('0123456789')")))
    alloc = wait_status(local, "said", "complete")
    url = f"{local.nomad.url}/v1/client/fs/logs/{alloc['ID']}"

    def logs(**params: str) -> requests.Response:
        return requests.get(url, params={"task": "say", "type": "stdout", "plain": "true",
                                         **params}, timeout=5)

    assert logs(origin="end", offset="4").text == "789\n"
    assert logs(origin="start", offset="7").text == "789\n"
    framed = requests.get(url, params={"task": "say", "type": "stdout"}, timeout=5).json()
    assert (framed["File"], framed["Offset"]) == ("alloc/logs/say.stdout.0", 0)
    assert (logs(origin="middle").status_code, logs(origin="middle").text) == (
        400, "origin must be start or end")
    assert logs(task="ghost").status_code == 400
