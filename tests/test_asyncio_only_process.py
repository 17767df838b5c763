"""``stores._http.asyncio_only_process``: the command line keeps httpcore from importing trio
(start-up), and nothing else changes: trio still imports, and a request is still sent."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from stacksecrets.stores._http import asyncio_only_process
asyncio_only_process()
asyncio_only_process()  # once is enough; a second call adds nothing
import anyio, httpx

async def main():
    async with httpx.AsyncClient(transport=None, verify=False) as client:
        return client
anyio.run(main)
import httpcore._synchronization as sync
print("trio imported by httpcore:", "trio" in sys.modules, sync.trio is not None)
import trio
print("trio imports:", trio.__name__ == "trio")
"""


def test_httpcore_goes_without_trio_and_trio_still_imports():
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.splitlines() == [
        "trio imported by httpcore: False False",
        "trio imports: True",
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
