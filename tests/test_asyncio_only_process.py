"""``cli._process.asyncio_only_process``: the command line keeps httpcore from importing trio
and httpx from importing its own command line (start-up), and nothing else changes: both
still import when asked for, and a client is still made."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from stacksecrets.cli._process import asyncio_only_process
asyncio_only_process()
asyncio_only_process()  # once is enough; a second call adds nothing
import anyio, httpx

async def main():
    async with httpx.AsyncClient(transport=None, verify=False) as client:
        return client
anyio.run(main)
import httpcore._synchronization as sync
print("trio imported by httpcore:", "trio" in sys.modules, sync.trio is not None)
print("httpx's command line imported:", "httpx._main" in sys.modules, "rich" in sys.modules)
import trio
print("trio imports:", trio.__name__ == "trio")
import httpx._main
print("httpx._main imports:", httpx._main.__name__ == "httpx._main")
"""


def test_httpcore_goes_without_trio_and_httpx_without_its_cli():
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.splitlines() == [
        "trio imported by httpcore: False False",
        "httpx's command line imported: False False",
        "trio imports: True",
        "httpx._main imports: True",
    ]


def test_a_validate_process_does_not_import_trio(tmp_path):
    """The CLI on a ZenML-like HTTP store URL: the store is made (httpx client and all), trio
    is not imported."""
    code = (
        "import sys, runpy\n"
        "sys.argv = ['stacksecrets', '--deadline', '0.5', 'secret', 'list', '--store', "
        "'zenml+http://127.0.0.1:9?username=u&password=p']\n"
        "try:\n"
        "    runpy.run_module('stacksecrets', run_name='__main__', alter_sys=True)\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('httpcore' in sys.modules, 'trio' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.stdout.splitlines()[-1] == "True False", result.stderr[-2000:]


def test_main_called_with_arguments_leaves_the_process_imports_alone(tmp_path):
    """``main(ARGS)`` (tests, code that embeds the command) runs in someone else's process,
    which may use trio with httpx later: no import finder is installed."""
    code = (
        "import sys\n"
        "from stacksecrets.cli import main\n"
        "before = list(sys.meta_path)\n"
        "try:\n"
        f"    main(['secret', 'list', '--store', {(tmp_path / 's.json').as_uri()!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sys.meta_path == before)\n"
        "import httpcore._synchronization as sync\n"
        "print(sync.trio is not None)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.stdout.splitlines()[-2:] == ["True", "True"], result.stderr[-2000:]
