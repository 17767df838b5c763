"""The stack definition cache (``_stackcache``) against a real ZenML 0.98 server, across real
processes.

Every validation is a new ``python -m stacksecrets validate --zenml-stack ...`` process; the
changes between two validations are made through ZenML's REST API by this test process.
Which calls a validation made is taken from its debug log (``stacksecrets.zenml.request``
events, and ``stacksecrets.zenml.stacks_read``: how many components and flavors came from
the cache).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from stacksecrets._stackcache import CachedComponent, CachedFlavor, blank_plain
from zenml_fixtures import ZenMLServer

pytestmark = pytest.mark.zenml

REQUEST = re.compile(r"stacksecrets\.zenml\.request\s.*?method=(\S+) path=(\S+)")
STACKS_READ = re.compile(
    r"stacksecrets\.zenml\.stacks_read\s+components=(\d+) components_cached=(\d+) "
    r"flavors=(\d+) flavors_cached=(\d+)"
)


@attrs.frozen
class Defs:
    prefix: str
    url: str
    #: stack name -> id; component name -> id.
    stacks: dict[str, str]
    components: dict[str, str]
    values: dict[str, dict[str, str]]
    plain: str

    def name(self, short: str) -> str:
        return self.prefix + short


def _rest(server: ZenMLServer, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    answer = server.rest().request(method, path, **kwargs)
    answer.raise_for_status()
    data = answer.json() if answer.content else None
    return dict(data) if isinstance(data, dict) else {}


def _registry(server: ZenMLServer, name: str, config: Mapping[str, str]) -> str:
    made = _rest(
        server,
        "POST",
        "/components",
        json={
            "name": name,
            "type": "container_registry",
            "flavor": "default",
            "configuration": dict(config),
        },
    )
    return str(made["id"])


@pytest.fixture(scope="module")
def defs(zenml_server: ZenMLServer) -> Defs:
    """Two secrets, four registries and three stacks (a, b, gone), left alone until ZenML's
    stamps settle."""
    p = f"sc{uuid.uuid4().hex[:6]}-"
    values = {
        p + "one": {"user": "u" + uuid.uuid4().hex, "password": "p" + uuid.uuid4().hex},
        p + "two": {"k": "v" + uuid.uuid4().hex},
    }
    zenml_server.create_secrets(values)
    default = _rest(zenml_server, "GET", "/stacks", params={"name": "default", "hydrate": "true"})
    groups = default["items"][0]["metadata"]["components"]
    shared = {kind: [groups[kind][0]["id"]] for kind in ("orchestrator", "artifact_store")}
    plain = "plain-" + uuid.uuid4().hex
    components = {
        "a": _registry(
            zenml_server,
            p + "a",
            {
                "uri": "localhost:5000",
                "authentication_secret": "{{" + p + "one.password}}",
                "default_repository": plain,
            },
        ),
        "b": _registry(
            zenml_server,
            p + "b",
            {"uri": "localhost:5001", "default_repository": "{{" + p + "two.k}}"},
        ),
        "gone": _registry(
            zenml_server,
            p + "gone",
            {"uri": "localhost:5002", "default_repository": "{{" + p + "one.user}}"},
        ),
        "other": _registry(
            zenml_server,
            p + "other",
            {"uri": "localhost:5003", "default_repository": "{{" + p + "two.nokey}}"},
        ),
    }
    stacks = {}
    for short in ("a", "b", "gone"):
        made = _rest(
            zenml_server,
            "POST",
            "/stacks",
            json={
                "name": p + short,
                "components": {**shared, "container_registry": [components[short]]},
            },
        )
        stacks[short] = str(made["id"])
    server = zenml_server
    url = f"zenml+{server.url}?username={server.username}&password={server.password}"
    zenml_server.wait_until_settled("/components", p)
    return Defs(p, url, stacks, components, values, plain)


@attrs.frozen
class Run:
    returncode: int
    report: dict[str, Any]
    calls: Counter[str]
    #: (components, from the cache, flavors, from the cache)
    read: tuple[int, int, int, int]
    stderr: str

    @property
    def problems(self) -> set[tuple[str, str, str | None]]:
        return {(p["kind"], p["secret"], p["key"]) for p in self.report.get("problems", [])}


def validate(defs: Defs, cache: Path, *stacks: str, **extra: str) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKSECRETS_", "ZENML_"))}
    env["STACKSECRETS_CACHE_DIR"] = str(cache)
    env.update(extra)
    argv = [sys.executable, "-m", "stacksecrets", "-vv", "validate", "--store", defs.url]
    argv += ["--level", "SECRET_AND_KEY_EXISTS", "--json"]
    for short in stacks:
        argv += ["--zenml-stack", defs.name(short)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env, check=False)
    report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    found = STACKS_READ.search(result.stderr)
    read = tuple(int(n) for n in found.groups()) if found else (0, 0, 0, 0)
    calls = Counter(f"{m} {p.removeprefix('/api/v1')}" for m, p in REQUEST.findall(result.stderr))
    return Run(result.returncode, report, calls, read, result.stderr)  # type: ignore[arg-type]


def test_a_warm_run_reads_no_definition_that_did_not_change(defs: Defs, tmp_path: Path):
    """Cold: the stacks, their components and flavors. Warm (a new process): the stacks and
    the flavors' stamps, at once, and no component; the same problems either way."""
    cache = tmp_path / "cache"
    cold = validate(defs, cache, "a", "b")
    assert cold.returncode == 0, cold.stderr[-3000:]
    assert cold.problems == set()
    assert cold.calls["GET /components"] == 1
    assert (cold.read[1], cold.read[3]) == (0, 0)
    warm = validate(defs, cache, "a", "b")
    assert warm.returncode == 0, warm.stderr[-3000:]
    assert warm.problems == set()
    assert warm.calls == Counter(
        {"POST /login": 1, "GET /stacks": 1, "GET /flavors": 1, "GET /secrets": 1}
    )
    assert warm.read == (4, 4, 3, 3)  # two registries, the shared orchestrator and store
    # The secrets the stacks referenced last time are asked in the stacks' round trip: the
    # validation's own stamp call is answered from that answer.
    asked = warm.stderr.index("path=/api/v1/secrets")
    assert asked < warm.stderr.index("stacksecrets.zenml.stacks_read")
    assert warm.report["stats"]["store_calls"] == 1


def test_a_component_changed_by_another_process_is_seen(
    defs: Defs, zenml_server: ZenMLServer, tmp_path: Path
):
    """A warm cache; then another process points stack b's registry at a key that does not
    exist: the next run reads that one component again and reports the key."""
    cache = tmp_path / "cache"
    assert validate(defs, cache, "a", "b").problems == set()
    assert validate(defs, cache, "a", "b").read[1] == 4
    cid = defs.components["b"]
    _rest(
        zenml_server,
        "PUT",
        f"/components/{cid}",
        json={
            "configuration": {
                "uri": "localhost:5001",
                "default_repository": "{{" + defs.name("two.gone}}"),
            }
        },
    )
    try:
        after = validate(defs, cache, "a", "b")
        assert after.returncode == 1, after.stderr[-3000:]
        assert after.problems == {("missing_key", defs.name("two"), "gone")}
        assert after.read[:2] == (4, 3)
        assert after.calls["GET /components"] == 1
    finally:
        _rest(
            zenml_server,
            "PUT",
            f"/components/{cid}",
            json={
                "configuration": {
                    "uri": "localhost:5001",
                    "default_repository": "{{" + defs.name("two.k}}"),
                }
            },
        )
    assert validate(defs, cache, "a", "b").problems == set()


def test_a_stack_given_another_component_is_seen(
    defs: Defs, zenml_server: ZenMLServer, tmp_path: Path
):
    """The stacks are read live: stack a given another (uncached) registry by another process
    is validated with it at once."""
    cache = tmp_path / "cache"
    assert validate(defs, cache, "a").problems == set()
    stack = defs.stacks["a"]

    def registry(short: str) -> None:
        _rest(
            zenml_server,
            "PUT",
            f"/stacks/{stack}",
            json={
                "components": {
                    "container_registry": [defs.components[short]],
                    **_kept(zenml_server, stack),
                }
            },
        )

    registry("other")
    try:
        after = validate(defs, cache, "a")
        assert after.problems == {("missing_key", defs.name("two"), "nokey")}
    finally:
        registry("a")
    assert validate(defs, cache, "a").problems == set()


def _kept(server: ZenMLServer, stack: str) -> dict[str, list[str]]:
    item = _rest(server, "GET", f"/stacks/{stack}", params={"hydrate": "true"})
    groups = item["metadata"]["components"]
    return {k: [c["id"] for c in v] for k, v in groups.items() if k != "container_registry"}


def test_a_deleted_stack_is_reported(defs: Defs, zenml_server: ZenMLServer, tmp_path: Path):
    """A stack deleted after a run that cached its components is reported as unknown."""
    cache = tmp_path / "cache"
    assert validate(defs, cache, "a", "gone").problems == set()
    _rest(zenml_server, "DELETE", f"/stacks/{defs.stacks['gone']}")
    after = validate(defs, cache, "a", "gone")
    assert after.returncode not in (0, 1)
    assert f"no stack named {defs.name('gone')!r}" in after.stderr


def test_the_cache_file_holds_no_value_and_is_private(defs: Defs, tmp_path: Path):
    cache = tmp_path / "cache"
    validate(defs, cache, "a", "b")
    path = cache / "stacks.json"
    text = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for secret in defs.values.values():
        for value in secret.values():
            assert value not in text
    assert defs.plain not in text  # a plain string in a configuration is blanked
    assert "{{" + defs.name("one.password}}") in text


def test_a_file_others_may_write_or_another_user_owns_is_not_believed(
    defs: Defs, zenml_server: ZenMLServer, tmp_path: Path
):
    """A planted entry (here: the real one, edited) is believed from the user's own 0600 file
    only; from a file others may write, or one another user owns, it is ignored and the
    component read from the server."""
    cache = tmp_path / "cache"
    validate(defs, cache, "a")
    path = cache / "stacks.json"
    document = json.loads(path.read_text())
    for scope in document["scopes"].values():
        scope["components"][defs.components["a"]]["configuration"]["authentication_secret"] = (
            "{{" + defs.name("one.planted}}")
        )
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    believed = validate(defs, cache, "a")
    assert believed.problems == {("missing_key", defs.name("one"), "planted")}  # it is used

    path.chmod(0o666)
    writable = validate(defs, cache, "a")
    assert writable.problems == set()
    assert writable.read[1] == 0
    assert "stacksecrets.metacache.unusable" in writable.stderr
    if os.geteuid() == 0:
        path.chmod(0o600)
        os.chown(path, 65534, 65534)
        foreign = validate(defs, cache, "a")
        assert foreign.problems == set()
        assert foreign.read[1] == 0


def test_a_corrupt_file_is_ignored_and_rebuilt(defs: Defs, tmp_path: Path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "stacks.json").write_text('{"format": 1, "scopes": {"zenml+http')
    first = validate(defs, cache, "b")
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.read[1] == 0
    assert json.loads((cache / "stacks.json").read_text())["format"] == 1
    assert validate(defs, cache, "b").read[1] == 3


def test_the_off_switch_and_cache_clear(defs: Defs, tmp_path: Path):
    """STACKSECRETS_METADATA_CACHE=0 turns the definition cache off with the metadata cache
    (no file, every component read); `stacksecrets cache clear` deletes it too."""
    cache = tmp_path / "cache"
    off = validate(defs, cache, "b", STACKSECRETS_METADATA_CACHE="0")
    assert off.read[1] == 0
    assert not (cache / "stacks.json").exists()
    validate(defs, cache, "b")
    assert validate(defs, cache, "b", STACKSECRETS_METADATA_CACHE="0").read[1] == 0
    assert (cache / "stacks.json").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKSECRETS_")}
    cleared = subprocess.run(
        [sys.executable, "-m", "stacksecrets", "cache", "clear"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "STACKSECRETS_CACHE_DIR": str(cache)},
        check=True,
    )
    assert "Cleared" in cleared.stdout
    assert not (cache / "stacks.json").exists()


def test_blanking_keeps_references_and_structure():
    value = {"a": "plain", "b": ["{{s.k}}", "x", 3, None], "c": {"d": "pre {{s.k}} post"}}
    assert blank_plain(value) == {
        "a": "",
        "b": ["{{s.k}}", "", 3, None],
        "c": {"d": "pre {{s.k}} post"},
    }
    component = CachedComponent(
        "i", "t", "orchestrator", "local", "n", {"x": "secret-ish", "y": "{{a.b}}"}, {}, {}, (), 1.0
    )
    data = component.to_dict()
    assert data["configuration"] == {"x": "", "y": "{{a.b}}"}
    assert CachedComponent.from_dict(json.loads(json.dumps(data))) is not None


@pytest.mark.parametrize(
    "broken",
    [None, [], {"id": 1}, {"id": "i", "stamp": "t", "type": "o", "flavor": "f", "name": "n",
     "configuration": [], "settings": {}, "environment": {}, "secrets": [], "seen": 1.0}],
)  # fmt: skip
def test_a_malformed_component_entry_is_dropped(broken: object):
    assert CachedComponent.from_dict(broken) is None


@pytest.mark.parametrize(
    "broken",
    [None, [], {"id": 1}, {"id": "i", "stamp": "t", "schema": "x", "seen": 1.0},
     {"id": "i", "stamp": "t", "schema": {}, "seen": True}],
)  # fmt: skip
def test_a_malformed_flavor_entry_is_dropped(broken: object):
    assert CachedFlavor.from_dict(broken) is None


@pytest.mark.anyio
async def test_an_early_answer_is_used_once_and_never_after_a_write(defs: Defs, zenml_server):
    """The store's prefetch (asked while stacks are read) answers the validation's stamp call
    for the same names without a request, once; names it did not cover, a second call, or a
    call after a write go to the server."""
    from stacksecrets.stores._zenml import ZenMLStore

    one, two = defs.name("one"), defs.name("two")
    server = zenml_server
    async with ZenMLStore(server.url, username=server.username, password=server.password) as store:
        await store._prefetch([one, two, defs.name("absent")])
        sent = store.http_calls
        stamps = await store.secrets_metadata([one, two, defs.name("absent")])
        assert set(stamps) == {one, two}
        assert store.http_calls == sent  # answered early
        await store.secrets_metadata([one, two])
        assert store.http_calls == sent + 1  # used once
        await store._prefetch([one])
        sent = store.http_calls
        assert await store.secrets_exist([one, two]) == {one, two}
        assert store.http_calls == sent + 1  # two was not covered: asked afresh
        await store._prefetch([one])
        extra = defs.name("extra")
        await store.create_secret(extra, {"k": "v"})
        try:
            sent = store.http_calls
            await store.secrets_exist([one])
            assert store.http_calls == sent + 1  # a write drops every early answer
        finally:
            await store.delete_secret(extra)
