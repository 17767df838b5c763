"""The metadata cache against a real ZenML 0.98 server, across real processes.

Every validation here is a new ``python -m stacksecrets validate`` process; the changes between
two validations are made by yet other processes (the ``stacksecrets secret`` CLI, a REST call).
Which secrets a validation read is taken from its debug log (``stacksecrets.fetch.done``).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from stacksecrets import AsyncClient, ValidationLevel
from stacksecrets.stores._zenml import ZenMLStore
from zenml_fixtures import ZenMLServer

pytestmark = pytest.mark.zenml

FETCHED = re.compile(r"stacksecrets\.fetch\.done\s.*?secret=(\S+)")


@attrs.define
class Seeded:
    prefix: str
    url: str
    #: name -> values, as created (updated in place by the tests that change them).
    values: dict[str, dict[str, str]]
    changing: Path
    steady_a: Path
    steady_b: Path

    def name(self, short: str) -> str:
        return self.prefix + short


def _token() -> str:
    return "v" + uuid.uuid4().hex


def _stack_file(path: Path, refs: Sequence[str]) -> Path:
    config = {f"attr{i}": "{{" + ref + "}}" for i, ref in enumerate(refs)}
    stack = {
        "name": path.stem,
        "components": [
            {"type": "orchestrator", "flavor": "x", "name": "o", "configuration": config}
        ],
    }
    path.write_text(json.dumps(stack))
    return path


@pytest.fixture(scope="module")
def seeded(zenml_server: ZenMLServer, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Secrets for this module, created once, then left alone until ZenML's stamps settle."""
    prefix = f"mc{uuid.uuid4().hex[:6]}-"
    values = {
        "same": {"k": _token()},
        "add": {"k": _token()},
        "rm": {"k": _token(), "gone": _token()},
        "val": {"k": _token()},
        "recreate": {"old": _token()},
        "priv": {"k": _token()},
        **{f"c{i}": {"k": _token(), "j": _token()} for i in range(10)},
    }
    zenml_server.create_secrets({prefix + name: v for name, v in values.items()})
    folder = tmp_path_factory.mktemp("metacache-stacks")
    p = prefix
    changing = _stack_file(
        folder / "changing.json",
        [
            f"{p}same.k",
            f"{p}add.new",
            f"{p}rm.gone",
            f"{p}val.k",
            f"{p}recreate.old",
            f"{p}recreate.new",
            f"{p}priv.k",
        ],
    )
    steady_a = _stack_file(folder / "steady_a.json", [f"{p}c{i}.k" for i in range(5)])
    steady_b = _stack_file(folder / "steady_b.json", [f"{p}c{i}.j" for i in range(5, 10)])
    server = zenml_server
    url = f"zenml+{server.url}?username={server.username}&password={server.password}"
    zenml_server.wait_until_settled("/secrets", prefix)
    return Seeded(prefix, url, values, changing, steady_a, steady_b)


def _env(cache_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKSECRETS_", "ZENML_"))}
    env["STACKSECRETS_CACHE_DIR"] = str(cache_dir)
    env.update(extra or {})
    return env


def _argv(seeded: Seeded, *paths: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "stacksecrets",
        "-vv",
        "validate",
        *map(str, paths),
        "--store",
        seeded.url,
        "--level",
        "SECRET_AND_KEY_EXISTS",
        "--json",
    ]


@attrs.frozen
class Run:
    report: dict[str, Any]
    read: set[str]
    stderr: str

    @property
    def calls(self) -> int:
        return int(self.report["stats"]["store_calls"])

    @property
    def hits(self) -> int:
        return int(self.report["stats"]["metadata_hits"])

    @property
    def problems(self) -> set[tuple[str, str, str | None]]:
        return {(p["kind"], p["secret"], p["key"]) for p in self.report["problems"]}


def _parse(result: subprocess.CompletedProcess[str]) -> Run:
    assert result.returncode in {0, 1}, result.stderr[-3000:]
    return Run(json.loads(result.stdout), set(FETCHED.findall(result.stderr)), result.stderr)


def validate(seeded: Seeded, cache_dir: Path, *paths: Path, **extra: str) -> Run:
    result = subprocess.run(
        _argv(seeded, *paths),
        capture_output=True,
        text=True,
        timeout=180,
        env=_env(cache_dir, extra),
        check=False,
    )
    return _parse(result)


def cli(seeded: Seeded, cache_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "stacksecrets", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=_env(cache_dir, {"STACKSECRETS_STORE": seeded.url}),
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _assert_no_value_in(path: Path, values: Mapping[str, Mapping[str, str]]) -> None:
    text = path.read_text()
    leaked = [name for name, pairs in values.items() for v in pairs.values() if v in text]
    assert not leaked, f"values of {leaked} are in the cache file"


def test_changes_by_other_processes_are_seen_and_only_changed_secrets_read(
    seeded: Seeded, zenml_server: ZenMLServer, tmp_path: Path
):
    """Cold reads all; warm (a new process) makes the one list call only; after another
    process adds a key, removes a key, changes a value, deletes and re-creates a secret with
    other keys and makes one private, the next process reads exactly those five."""
    cache = tmp_path / "cache"
    n = seeded.name
    before = {("missing_key", n("add"), "new"), ("missing_key", n("recreate"), "new")}

    cold = validate(seeded, cache, seeded.changing)
    assert cold.problems == before
    assert (cold.calls, cold.hits) == (1 + 6, 0)
    assert cold.read == {n(s) for s in ("same", "add", "rm", "val", "recreate", "priv")}

    warm = validate(seeded, cache, seeded.changing)
    assert warm.problems == before
    assert (warm.calls, warm.hits, warm.read) == (1, 6, set())

    # Another process changes five of the six secrets.
    new_value = _token()
    cli(seeded, cache, "secret", "update", n("add"), f"--new={new_value}")
    cli(seeded, cache, "secret", "update", n("rm"), "--remove-key", "gone")
    changed_value = _token()
    cli(seeded, cache, "secret", "update", n("val"), f"--k={changed_value}")
    cli(seeded, cache, "secret", "delete", "-y", n("recreate"))
    recreated_value = _token()
    cli(seeded, cache, "secret", "create", n("recreate"), f"--new={recreated_value}")
    make_private = (
        "import sys, httpx\n"
        "url, user, password, name = sys.argv[1:]\n"
        "c = httpx.Client(base_url=url + '/api/v1')\n"
        "token = c.post('/login', data={'username': user, 'password': password})"
        ".json()['access_token']\n"
        "c.headers['Authorization'] = 'Bearer ' + token\n"
        "item = c.get('/secrets', params={'name': 'equals:' + name}).json()['items'][0]\n"
        "c.put('/secrets/' + item['id'], json={'private': True}).raise_for_status()\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            make_private,
            zenml_server.url,
            zenml_server.username,
            zenml_server.password,
            n("priv"),
        ],
        check=True,
        timeout=120,
    )

    after = validate(seeded, cache, seeded.changing)
    assert after.problems == {
        ("missing_key", n("rm"), "gone"),
        ("missing_key", n("recreate"), "old"),
    }
    assert after.read == {n(s) for s in ("add", "rm", "val", "recreate", "priv")}
    assert (after.calls, after.hits) == (1 + 5, 1)

    values = {
        **seeded.values,
        "extra": {"a": new_value, "b": changed_value, "c": recreated_value},
    }
    _assert_no_value_in(cache / "metadata.json", values)
    assert stat.S_IMODE((cache / "metadata.json").stat().st_mode) == 0o600


def test_two_processes_validating_at_once_merge_into_one_cache(seeded: Seeded, tmp_path: Path):
    """Two processes write the cache at the same time (different secrets): the file keeps
    both sets, so a third process reads nothing."""
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            _argv(seeded, stack),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(cache),
        )
        for stack in (seeded.steady_a, seeded.steady_b)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        run = _parse(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        assert (run.calls, run.hits) == (1 + 5, 0)
    third = validate(seeded, cache, seeded.steady_a, seeded.steady_b)
    assert third.problems == set()
    assert (third.calls, third.hits, third.read) == (1, 10, set())
    _assert_no_value_in(cache / "metadata.json", seeded.values)


def test_a_hand_corrupted_cache_file_is_ignored_and_rebuilt(seeded: Seeded, tmp_path: Path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "metadata.json").write_text('{"format": 1, "scopes": {"zenml+http')
    first = validate(seeded, cache, seeded.steady_a)
    assert (first.problems, first.calls, first.hits) == (set(), 1 + 5, 0)
    assert json.loads((cache / "metadata.json").read_text())["format"] == 1
    second = validate(seeded, cache, seeded.steady_a)
    assert (second.calls, second.hits) == (1, 5)


def test_the_off_switch_and_cache_clear(seeded: Seeded, tmp_path: Path):
    """With a warm cache, STACKSECRETS_METADATA_CACHE=0 reads every secret (and writes no
    file); `stacksecrets cache clear` deletes the file, so the next validation is cold."""
    cache = tmp_path / "cache"
    validate(seeded, cache, seeded.steady_b)
    off = validate(seeded, cache, seeded.steady_b, STACKSECRETS_METADATA_CACHE="0")
    assert (off.calls, off.hits) == (1 + 5, 0)
    assert len(off.read) == 5

    cleared = cli(seeded, cache, "cache", "clear")
    assert "Cleared the metadata cache" in cleared.stdout
    assert not (cache / "metadata.json").exists()
    assert "No metadata cache" in cli(seeded, cache, "cache", "clear").stdout
    cold = validate(seeded, cache, seeded.steady_b)
    assert (cold.calls, cold.hits) == (1 + 5, 0)


@pytest.mark.anyio
async def test_a_client_in_process_answers_from_a_cache_another_process_wrote(
    seeded: Seeded, zenml_server: ZenMLServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The library, on asyncio and trio, after a CLI validation: one HTTP list call (and the
    login), no secret read."""
    cache = tmp_path / "cache"
    validate(seeded, cache, seeded.steady_a)
    monkeypatch.setenv("STACKSECRETS_CACHE_DIR", str(cache))
    store = ZenMLStore(
        zenml_server.url, username=zenml_server.username, password=zenml_server.password
    )
    async with store, AsyncClient(store) as client:  # the caller closes its store
        from stacksecrets._loaders import load_stacks

        report = await client.validate_stacks(
            load_stacks(seeded.steady_a), level=ValidationLevel.SECRET_AND_KEY_EXISTS
        )
        assert report.ok
        assert (report.stats.store_calls, report.stats.metadata_hits) == (1, 5)
        assert store.http_calls == 2  # login + one list
