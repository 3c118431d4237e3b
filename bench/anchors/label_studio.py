"""Anchor for bench/label_store.py, run with `.venv-labelstudio/bin/python` (Label Studio pins its own Django stack,
so it cannot share .venv or .venv-anchors): Label Studio's own server on loopback doing the benchmark's work.

Starts `label-studio start` (Django's server, as `pip install label-studio` users run it; DEBUG and analytics off,
SQLite) in a new process group with a temporary data dir, a user with a random per-run password and legacy API
token (both passed through the environment, never on a command line or printed). Then, over its REST API:

- "fresh" project: the items imported in one POST /api/projects/{id}/import, each with a model pre-label
  ({"choices": ["fees"]}, score = the item's confidence) and uncertainty sampling (lowest score first), like ours;
- "shared" project, overlap 2 (maximum_annotations=2): the items imported with one annotation each by a second
  user ("bob", created with POST /api/users/), the API's own bulk path for existing labels;
- open = GET /api/projects/{id} + the data manager's first page (GET /api/tasks?project=..&page=1&page_size=30)
  + GET /api/projects/{id}/next, median of 5 (every request on a new connection: see NEW_CONNECTION);
- next+save = POST /api/tasks/{id}/annotations/ (a choices result) then GET /api/projects/{id}/next, per step;
- export = GET /api/projects/{shared}/export?exportType=CSV, to the last byte received (bob's labels plus the ones
  saved during the steps).

Usage: label_studio.py INPUT_JSON WORK_DIR
INPUT_JSON: {"texts": [...], "confidences": [...], "labels": [...], "steps": n, "step_budget_s": s}.
Prints one JSON line with the figures; the server's log tail goes to stderr when something fails.
"""
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import requests

START_LIMIT_S = 600
HTTP_LIMIT_S = 1800
PAGE_SIZE = 30  # the data manager's first page
# NEW_CONNECTION: every request opens its own connection. On a kept-alive connection Django's server answers ~40 ms
# late (its header and body writes meet Nagle's algorithm and the client's delayed ACK), which would count against
# Label Studio; a loopback connect costs ~0.1 ms.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def label_config(labels: list[str]) -> str:
    choices = "".join(f'<Choice value="{name}"/>' for name in labels)
    return (f'<View><Text name="text" value="$text"/>'
            f'<Choices name="label" toName="text" choice="single">{choices}</Choices></View>')


def choice_result(label: str) -> list[dict]:
    return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]


class Server:
    """`label-studio start` in its own process group; stop() kills the whole group."""

    def __init__(self, work: Path):
        self.data = work / "data"
        self.log_path = work / "server.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(20)
        env = dict(os.environ,
                   LABEL_STUDIO_BASE_DATA_DIR=str(self.data), DJANGO_DB="sqlite",
                   LABEL_STUDIO_USERNAME="ann@bench.invalid", LABEL_STUDIO_PASSWORD=secrets.token_urlsafe(24),
                   LABEL_STUDIO_USER_TOKEN=self.token, LABEL_STUDIO_DEBUG="false",
                   LABEL_STUDIO_COLLECT_ANALYTICS="false", LOG_LEVEL="WARNING", SENTRY_DSN="",
                   FRONTEND_SENTRY_DSN="")
        exe = Path(sys.executable).parent / "label-studio"
        cmd = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port),
               "--data-dir", str(self.data), "--enable-legacy-api-token"]
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=work)

    def api(self, method: str, path: str, timeout: float = HTTP_LIMIT_S, **kwargs) -> requests.Response:
        """One request on a new connection (see NEW_CONNECTION); raises on an HTTP error."""
        resp = requests.request(method, self.url + path, headers={"Authorization": f"Token {self.token}"},
                                timeout=timeout, **kwargs)
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {resp.status_code}: {resp.text[:500]}")
        return resp

    def wait_ready(self) -> float:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < START_LIMIT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(f"label-studio exited with {self.proc.returncode} while starting")
            try:
                self.api("GET", "/api/projects", timeout=5)
                return time.perf_counter() - t0
            except (requests.RequestException, RuntimeError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"label-studio did not answer within {START_LIMIT_S} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.log.close()

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_bytes()[-n:].decode("utf-8", "replace") if self.log_path.exists() else ""


def create_project(srv: Server, title: str, labels: list[str], **extra) -> int:
    body = {"title": title, "label_config": label_config(labels), **extra}
    return srv.api("POST", "/api/projects", json=body).json()["id"]


def import_tasks(srv: Server, pid: int, tasks: list[dict]) -> float:
    t0 = time.perf_counter()
    done = srv.api("POST", f"/api/projects/{pid}/import", json=tasks).json()
    elapsed = time.perf_counter() - t0
    if done.get("task_count") != len(tasks):
        raise RuntimeError(f"import of {len(tasks)} tasks reported {done}")
    return elapsed


def open_task(srv: Server, pid: int) -> tuple[float, dict]:
    """What a labeler waits for when opening the project: the project, the first page, the next task."""
    t0 = time.perf_counter()
    srv.api("GET", f"/api/projects/{pid}")
    srv.api("GET", "/api/tasks", params={"project": pid, "page": 1, "page_size": PAGE_SIZE})
    task = srv.api("GET", f"/api/projects/{pid}/next").json()
    return time.perf_counter() - t0, task


def label_steps(srv: Server, pid: int, labels: list[str], steps: int, budget_s: float) -> list[float]:
    """Milliseconds per step: save the label of the task on screen, then fetch the next one."""
    task = srv.api("GET", f"/api/projects/{pid}/next").json()
    times: list[float] = []
    start = time.perf_counter()
    for i in range(steps):
        t0 = time.perf_counter()
        srv.api("POST", f"/api/tasks/{task['id']}/annotations/",
                json={"result": choice_result(labels[i % len(labels)]), "lead_time": 1.0})
        task = srv.api("GET", f"/api/projects/{pid}/next").json()
        times.append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() - start > budget_s:
            break
    return times


def step_figures(times: list[float]) -> dict:
    q = statistics.quantiles(times, n=100, method="inclusive")
    return {"step_p50_ms": statistics.median(times), "step_p99_ms": q[98], "step_max_ms": max(times),
            "steps": len(times)}


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # runs the finally below, which stops the server


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    spec = json.loads(Path(sys.argv[1]).read_text())
    work = Path(sys.argv[2]).resolve()
    texts, confidences, labels = spec["texts"], spec["confidences"], spec["labels"]
    steps, budget_s = spec["steps"], spec["step_budget_s"]
    srv = Server(work)
    try:
        out: dict = {"version": version("label-studio"), "items": len(texts), "startup_s": srv.wait_ready()}
        bob = srv.api("POST", "/api/users/", json={"email": "bob@bench.invalid", "username": "bob"}).json()["id"]

        fresh = create_project(srv, "fresh", labels, sampling="Uncertainty sampling")
        model = "bench-model"
        out["import_fresh_s"] = import_tasks(srv, fresh, [
            {"data": {"text": t}, "predictions": [{"result": choice_result(labels[0]), "score": c,
                                                    "model_version": model}]}
            for t, c in zip(texts, confidences)])
        srv.api("PATCH", f"/api/projects/{fresh}", json={"model_version": model})

        shared = create_project(srv, "shared", labels, maximum_annotations=2)
        out["import_shared_s"] = import_tasks(srv, shared, [
            {"data": {"text": t}, "annotations": [{"result": choice_result(labels[0]), "completed_by": bob}]}
            for t in texts])

        for name, pid in (("fresh", fresh), ("shared", shared)):
            opens = [open_task(srv, pid) for _ in range(5)]
            out[name] = {"open_s": statistics.median(t for t, _ in opens), "opens_s": [t for t, _ in opens],
                         "first_task": opens[-1][1],
                         **step_figures(label_steps(srv, pid, labels, steps, budget_s))}
        # the uncertainty ordering really applied: the first task offered carries the lowest pre-label score
        scores = [p.get("score") for p in out["fresh"].pop("first_task").get("predictions", [])]
        out["fresh"]["uncertainty_first_ok"] = scores == [min(confidences)]
        out["shared"].pop("first_task")

        t0 = time.perf_counter()
        body = srv.api("GET", f"/api/projects/{shared}/export", params={"exportType": "CSV"}).content
        out["export_s"] = time.perf_counter() - t0
        out["export_rows"] = body.count(b"\n") - 1
        out["export_bytes"] = len(body)
        print(json.dumps(out), flush=True)
    except Exception:
        print(srv.log_tail(), file=sys.stderr)
        raise
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
