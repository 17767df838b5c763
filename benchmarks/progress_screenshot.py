"""The screenshot of a long validation on a terminal: docs/screenshots/validate-progress.png.

A real OpenBao dev server with 400 secrets, reached through the fault proxy (150 ms round trips,
two 503 answers with ``Retry-After: 2``), and 400 references checked by ``stacksecrets
validate --concurrency 4`` in a tmux window of 110x12; ``tmux capture-pane -e`` takes the
screen (with its colours) while the progress shows, rich draws the captured text as SVG and
headless Chromium makes the PNG. The captured text is saved beside it (.txt).

    .nox/tests/bin/python benchmarks/progress_screenshot.py   (after one `nox -s tests`)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fault_proxy import Fault, ProxyThread  # noqa: E402
from openbao_fixtures import start_openbao  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
SECRETS = 400
WIDTH, HEIGHT = 110, 12


def stack_file(folder: Path) -> Path:
    lines = ["name: training", "components:"]
    for i in range(SECRETS):
        key = "pasword" if i == 7 else "password"  # one typo: the report suggests the key
        lines += [
            "  - type: experiment_tracker",
            "    flavor: mlflow",
            f"    name: tracker-{i:03}",
            "    configuration:",
            f"      tracking_password: '{{{{svc-{i:03}.{key}}}}}'",
        ]
    path = folder / "training.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="stacksecrets-shot-"))
    bao = start_openbao(work)
    try:
        bao.write_many({f"svc-{i:03}": {"password": "x" * 12} for i in range(SECRETS)})
        stacks = stack_file(work)
        with ProxyThread("127.0.0.1", int(bao.address.rsplit(":", 1)[1]), latency_ms=150) as proxy:
            proxy.retry_after = "2"
            for _ in range(40):  # let the first reads through, then two 503s
                proxy.inject(Fault.NONE)
            proxy.inject(Fault.HTTP_503, count=2)
            store = f"vault+http://127.0.0.1:{proxy.port}/secret"
            bindir = Path(sys.executable).parent
            script = work / "run.sh"
            script.write_text(
                "printf '%s\\n' '$ stacksecrets validate training.yaml --store "
                "vault+http://127.0.0.1:.../secret --concurrency 4'\n"
                f"{bindir}/stacksecrets validate {stacks} --store {store} --concurrency 4\n"
                "sleep 60\n",
                encoding="utf-8",
            )
            env = {
                "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
                "VAULT_TOKEN": bao.root_token,
                "TERM": "xterm-256color",
                "STACKSECRETS_METADATA_CACHE": "off",
            }
            session = f"shot-{os.getpid()}"
            tmux(
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                str(WIDTH),
                "-y",
                str(HEIGHT),
                *(f"-e{k}={v}" for k, v in env.items()),
                f"bash {script}",
            )
            try:
                screen = ""
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:  # a moment with a retry wait on screen
                    time.sleep(0.2)
                    screen = tmux("capture-pane", "-p", "-e", "-t", session)
                    if "waiting" in screen and "retry" in screen and "secrets checked" in screen:
                        break
                else:
                    raise SystemExit("no progress with a retry wait was seen:\n" + screen)
            finally:
                tmux("kill-session", "-t", session)
    finally:
        bao.close()
        shutil.rmtree(work, ignore_errors=True)
    render(screen)


def render(screen: str) -> None:
    from rich.console import Console
    from rich.text import Text

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "validate-progress.txt").write_text(Text.from_ansi(screen).plain, encoding="utf-8")
    console = Console(record=True, width=WIDTH, file=open(os.devnull, "w"))  # noqa: SIM115, PTH123
    console.print(Text.from_ansi(screen.rstrip()))
    svg = OUT.parent.parent / ".validate-progress.svg"
    svg.write_text(console.export_svg(title="stacksecrets validate"), encoding="utf-8")
    html = svg.with_suffix(".html")
    html.write_text(
        f"<html><body style='margin:0;background:#fff'>{svg.read_text()}</body></html>",
        encoding="utf-8",
    )
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={OUT / 'validate-progress.png'}",
            "--window-size=1000,120",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
    )
    svg.unlink()
    html.unlink()
    print(OUT / "validate-progress.png")


if __name__ == "__main__":
    main()
