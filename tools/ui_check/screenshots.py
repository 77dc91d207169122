"""Screenshots of what a user opens after `make run`: the MLflow UI, the Prefect UI and the reports, in headless Chromium.

Starts `mlflow server` on the project's store (`mlflow.db`, `mlruns/`) and `prefect server start` on a copy of the
Prefect history database (`$PREFECT_HOME/prefect.db`, by default `~/.prefect/prefect.db`: the temporary server
`cookbook run` uses keeps its history there), each on a free port, then drives Chromium through the DevTools
protocol (no browser download: the system's `chromium`) over the pages a user would look at:

- the MLflow experiment's runs view (the README's link), with the newest lifecycle run expanded;
- the newest lifecycle parent run, one data stage run (params, datasets), a training stage run (its loss chart)
  and the summary run's artifacts;
- the newest ablation run, if there is one;
- Prefect's flow runs list, the newest `lifecycle` flow run (its task runs) and one stage's metrics artifact;
- `reports/report.md` rendered to HTML, and the page `dvc plots show` writes (opened offline).

Every page's PNG goes to `--out`; a page whose text is (nearly) empty is flagged blank. The servers and the
browser are stopped at the end. The last stdout line is a JSON object: {page: {"png", "text_chars", "blank"}}.

    .venv/bin/python tools/ui_check/screenshots.py --out /tmp/ui-shots            # from the project folder
    .venv/bin/python tools/ui_check/screenshots.py --project /tmp/clone --out /tmp/ui-shots --prefect-home /tmp/ph
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BLANK_BELOW_CHARS = 40
"""A page showing fewer characters of text than this is reported blank (a chart page has its titles at least)."""
WINDOW = (1400, 1000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Wait until `url` answers 200 (raise after `timeout` seconds, or when `proc` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def get_json(url: str, body: dict | None = None) -> dict | list:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


@contextlib.contextmanager
def server(cmd: list[str], env: dict[str, str], log_file: Path, health_url: str, timeout: float) -> Iterator[None]:
    """A server process in its own process group, stopped (TERM, then KILL) on exit."""
    with log_file.open("w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(health_url, timeout, proc)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def mlflow_server(project: Path, bin_dir: Path, port: int, logs: Path):
    cmd = [str(bin_dir / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{project / 'mlflow.db'}",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": ""}
    return server(cmd, env, logs / "mlflow-server.log", f"http://127.0.0.1:{port}/health", 180)


def prefect_server(home: Path, bin_dir: Path, port: int, logs: Path):
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api, "PREFECT_UI_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_DATABASE_CONNECTION_URL": "",
           "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port)}
    env = {k: v for k, v in env.items() if v != ""}
    cmd = [str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    return server(cmd, env, logs / "prefect-server.log", f"{api}/health", 240)


# --- what to open --------------------------------------------------------------------------------------------

@dataclass
class Page:
    name: str
    url: str
    ready: str | None = None
    """Text the page shows once rendered (waited for)."""
    script: str | None = None
    """JavaScript run once it rendered (a click), before the screenshot."""
    full: bool = False
    """The whole page (a report) rather than the window."""


ML = "workflowType=machine_learning"
"""MLflow 3's UI opens on its GenAI views unless the link asks for the model-training ones."""


def mlflow_pages(base: str, experiment: str) -> list[Page]:
    """The MLflow pages, found through its REST API."""
    api = f"{base}/api/2.0/mlflow"
    exp = get_json(f"{api}/experiments/get-by-name?experiment_name={urllib.parse.quote(experiment)}")["experiment"]
    exp_id = exp["experiment_id"]
    runs_url = f"{base}/#/experiments/{exp_id}/runs?{ML}"
    pages = [Page("mlflow_runs", runs_url, ready="Run Name"),
             Page("mlflow_runs_plain_link", f"{base}/#/experiments/{exp_id}/runs")]

    def search(filter_string: str, n: int = 1) -> list[dict]:
        found = get_json(f"{api}/runs/search", {"experiment_ids": [exp_id], "filter": filter_string,
                                                "max_results": n, "order_by": ["attributes.start_time DESC"]})
        return found.get("runs", [])

    def run_page(name: str, run: dict, tab: str = "", ready: str | None = None, script: str | None = None) -> Page:
        return Page(name, f"{base}/#/experiments/{exp_id}/runs/{run['info']['run_id']}{tab}?{ML}",
                    ready=ready or run["info"].get("run_name"), script=script)

    lifecycle = search("tags.run_kind = 'lifecycle' and tags.mlflow.runName LIKE 'lifecycle%'")
    if lifecycle:
        parent = lifecycle[0]
        pages.append(Page("mlflow_runs_expanded", runs_url, ready=parent["info"]["run_name"],
                          script=expand_row(parent["info"]["run_name"])))
        pages.append(run_page("mlflow_lifecycle_run", parent, ready="Parameters"))
        pid = parent["info"]["run_id"]
        for stage, tab, script in (("clean", "", None), ("clean", "/artifacts", click_leaves("top_rules.png")),
                                   ("pretrain", "/model-metrics", None),
                                   ("summary", "/artifacts", click_leaves("charts", "loss.png"))):
            child = search(f"tags.mlflow.parentRunId = '{pid}' and tags.mlflow.runName = '{stage}'")
            if child:
                suffix = tab.replace("/", "_").replace("-", "_")
                pages.append(run_page(f"mlflow_{stage}_run{suffix}", child[0], tab, script=script))
    ablation = search("tags.kind = 'ablation'")
    if ablation:
        pages.append(run_page("mlflow_ablation_run", ablation[0]))
        pages.append(Page("mlflow_runs_ablation_expanded", runs_url, ready=ablation[0]["info"]["run_name"],
                          script=expand_row(ablation[0]["info"]["run_name"])))
    return pages


def expand_row(run_name: str) -> str:
    """Click the expander of the runs-table row named `run_name` (and of its children), if the table has one."""
    return f"""
(async () => {{
  const rows = [...document.querySelectorAll('[role=row], .ag-row')].filter(r => r.innerText.includes({json.dumps(run_name)}));
  if (!rows.length) return 'no row ' + {json.dumps(run_name)};
  const button = rows[0].querySelector('button');
  if (!button) return 'no expander in row';
  button.click();
  await new Promise(r => setTimeout(r, 3000));
  return 'clicked: ' + (button.getAttribute('aria-label') || button.innerText || 'button');
}})()
"""


FIND_BY_TEXT = """
const byText = label => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.textContent.trim() === label && n.parentElement && n.parentElement.offsetParent !== null) return n.parentElement;
  }
  return null;
};
"""


def click_leaves(*labels: str) -> str:
    """Click, in turn, the element whose own text is each of `labels` (a folder, then a file in it; a tab)."""
    return f"""
(async () => {{
  {FIND_BY_TEXT}
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const done = [];
  for (const label of {json.dumps(list(labels))}) {{
    const hit = byText(label);
    if (!hit) return 'no ' + label + ' (after ' + done.join(', ') + ')';
    hit.click(); done.push(label); await sleep(3000);
  }}
  return 'clicked ' + done.join(', ');
}})()
"""


def prefect_pages(base: str) -> list[Page]:
    api = f"{base}/api"
    pages = [Page("prefect_flow_runs", f"{base}/runs", ready="lifecycle")]
    runs = get_json(f"{api}/flow_runs/filter", {"sort": "START_TIME_DESC", "limit": 20})
    flows = {f["id"]: f["name"] for f in get_json(f"{api}/flows/filter", {"limit": 200})}
    lifecycle = [r for r in runs if flows.get(r["flow_id"]) == "lifecycle" and r.get("start_time")]
    if lifecycle:
        run_id = lifecycle[0]["id"]
        url = f"{base}/runs/flow-run/{run_id}"
        pages.append(Page("prefect_flow_run", url, ready=lifecycle[0]["name"]))
        pages.append(Page("prefect_flow_run_task_runs", url, ready="ingest", script=click_leaves("Task Runs")))
        pages.append(Page("prefect_flow_run_artifacts", url, ready="ingest", script=click_leaves("Artifacts")))
        artifacts = get_json(f"{api}/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}},
                                                         "limit": 50})
        by_key = {a.get("key"): a for a in artifacts}
        for key in ("clean-metrics", "pretrain-metrics", "evaluate-metrics"):
            if key in by_key:
                pages.append(Page(f"prefect_artifact_{key.replace('-', '_')}",
                                  f"{base}/artifacts/artifact/{by_key[key]['id']}", ready=key.split("-")[0]))
    return pages


def report_pages(project: Path, out: Path, bin_dir: Path) -> list[Page]:
    """report.md rendered as a browser shows it (images relative to reports/), and `dvc plots show`'s page."""
    import markdown

    pages = []
    report = project / "reports" / "report.md"
    if report.exists():
        html = markdown.markdown(report.read_text(), extensions=["tables"])
        page = out / "report.html"  # <base> resolves report.md's relative image links against reports/
        page.write_text(f"<html><head><meta charset='utf-8'><base href='{report.parent.as_uri()}/'><style>body{{font-family:sans-serif;max-width:1300px}}"
                        f"table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px}}"
                        f"img{{max-width:1200px}}</style></head><body>{html}</body></html>")
        pages.append(Page("report_md", page.as_uri(), full=True))
    plots_dir = out / "dvc_plots"
    proc = subprocess.run([str(bin_dir / "dvc"), "plots", "show", "-o", str(plots_dir)], cwd=project,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode == 0 and (plots_dir / "index.html").exists():
        pages.append(Page("dvc_plots", (plots_dir / "index.html").as_uri(), full=True))
    else:
        print(f"dvc plots show failed: {proc.stderr.strip()[-300:]}", file=sys.stderr)
    return pages


# --- the browser ---------------------------------------------------------------------------------------------

class Browser:
    """Headless Chromium driven over the DevTools protocol (one tab)."""

    def __init__(self, chromium: str, profile: Path):
        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
             "--hide-scrollbars", "--allow-file-access-from-files", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        targets = get_json(f"http://127.0.0.1:{port}/json/list")
        self.ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        self.msg_id = 0

    async def call(self, ws, method: str, **params):
        self.msg_id += 1
        await ws.send(json.dumps({"id": self.msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("id") == self.msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def text(self, ws) -> str:
        result = await self.call(ws, "Runtime.evaluate", returnByValue=True,
                                 expression="document.body ? document.body.innerText : ''")
        return result["result"].get("value") or ""

    async def settle(self, ws, page: "Page", timeout_s: float) -> str:
        """Wait until the page shows `page.ready` (if given) and its text stopped changing for two polls."""
        deadline, previous, text = time.monotonic() + timeout_s, None, ""
        while time.monotonic() < deadline:
            await asyncio.sleep(1.5)
            text = await self.text(ws)
            if text == previous and len(text.strip()) >= BLANK_BELOW_CHARS and (
                    not page.ready or page.ready in text):
                break
            previous = text
        return text

    async def shoot(self, ws, page: "Page", out: Path, timeout_s: float) -> dict:
        await self.call(ws, "Page.navigate", url=page.url)
        await self.settle(ws, page, timeout_s)
        note = None
        if page.script:
            note = (await self.call(ws, "Runtime.evaluate", expression=page.script, awaitPromise=True,
                                    returnByValue=True))["result"].get("value")
            await self.settle(ws, Page(page.name, page.url), timeout_s / 2)
        text = await self.text(ws)
        png = out / f"{page.name}.png"
        shot = await self.call(ws, "Page.captureScreenshot", format="png", captureBeyondViewport=page.full)
        png.write_bytes(base64.b64decode(shot["data"]))
        png.with_suffix(".txt").write_text(text)
        return {"png": str(png), "text_chars": len(text.strip()), "blank": len(text.strip()) < BLANK_BELOW_CHARS,
                **({"ready_text_missing": page.ready} if page.ready and page.ready not in text else {}),
                **({"script": note} if note else {})}

    async def shoot_all(self, pages: list["Page"], out: Path, timeout_s: float) -> dict:
        import websockets

        results = {}
        async with websockets.connect(self.ws_url, max_size=64 * 2**20) as ws:
            await self.call(ws, "Page.enable")
            await self.call(ws, "Emulation.setDeviceMetricsOverride", width=WINDOW[0], height=WINDOW[1],
                            deviceScaleFactor=1, mobile=False)
            for page in pages:
                try:
                    results[page.name] = await self.shoot(ws, page, out, timeout_s)
                except Exception as exc:  # one broken page must not hide the others
                    results[page.name] = {"error": f"{type(exc).__name__}: {exc}"}
                results[page.name]["url"] = page.url
                print(f"{page.name}: {results[page.name]}", file=sys.stderr)
        return results

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=Path("."), help="the project folder (default: .)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs (keep it out of git)")
    parser.add_argument("--prefect-home", type=Path,
                        default=Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")),
                        help="the PREFECT_HOME whose prefect.db holds the runs (default: $PREFECT_HOME or ~/.prefect)")
    parser.add_argument("--experiment", default=None, help="MLflow experiment (default: tracking.experiment)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "chromium")
    parser.add_argument("--timeout", type=float, default=90.0,
                        help="seconds a page gets to finish rendering (default: 90; the UIs are slow on a busy machine)")
    parser.add_argument("--only", default=None, help="comma-separated page names (default: all)")
    args = parser.parse_args(argv)

    project = args.project.resolve()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    experiment = args.experiment
    if experiment is None:
        import yaml

        experiment = (yaml.safe_load((project / "params.yaml").read_text()).get("tracking") or {}).get(
            "experiment", "opencoder-cookbook")
    db = args.prefect_home / "prefect.db"
    if not db.exists():
        print(f"error: no Prefect history at {db}: pass --prefect-home (the PREFECT_HOME `cookbook run` used)",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ui-check-") as tmp:
        tmp = Path(tmp)
        home = tmp / "prefect-home"
        home.mkdir()
        for f in args.prefect_home.glob("prefect.db*"):  # a copy: another process may be writing the original
            shutil.copy2(f, home / f.name)
        mlflow_port, prefect_port = free_port(), free_port()
        mlflow_base, prefect_base = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{prefect_port}"
        pages = report_pages(project, out, bin_dir)
        with mlflow_server(project, bin_dir, mlflow_port, out), prefect_server(home, bin_dir, prefect_port, out):
            pages = mlflow_pages(mlflow_base, experiment) + prefect_pages(prefect_base) + pages
            browser = Browser(args.chromium, tmp / "chromium")
            try:
                if args.only:
                    pages = [p for p in pages if p.name in args.only.split(",")]
                results = asyncio.run(browser.shoot_all(pages, out, args.timeout))
            finally:
                browser.close()
    print(json.dumps(results))
    return 1 if any(r.get("blank") or r.get("error") for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
