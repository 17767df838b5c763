"""Hostile names, keys, settings and files: no file or URL chosen, no output forged, no crash.

What the store tests already show (tests/test_file_store.py: path-like names touch no other
file, any name round-trips; tests/test_zenml_store.py: names with / .. ? # % quotes and tabs
never change the URL) is not repeated here. Added: the same names through the command line,
hostile keys on both stores, names and component types that try to forge report lines or send
terminal escapes, and mistakes in store URLs and environment variables, which must get errors
that say what to fix; arbitrary bytes and YAML-like text fed to the stack loaders (the grammar
is fuzzed in tests/test_references.py; bombs, depth and size caps in tests/test_loaders.py).

The command runs in-process (click's runner) so that many cases stay cheap; tests/test_cli.py
runs it as a real process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_runner import Cli
from recording_transport import RecordingTransport
from stacksecrets import (
    AsyncClient,
    Client,
    Component,
    ConfigurationError,
    Stack,
    StackLoadError,
    load_stack_file,
)
from stacksecrets.stores import FileStore, ZenMLStore
from zenml_fixtures import ZenMLServer

HOSTILE = [
    "../../escaped",
    "/etc/passwd",
    "a/b/../c",
    "x?y=1#frag",
    "%2e%2e%2Fpct",
    "sp ace",
    "q\"u'ote",
    "tab\there",
    "new\nline",
    "esc\x1b[2Jclear",
    "bell\x07",
    "ünï/名前",
]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _printable_lines(text: str) -> bool:
    return all(line.isprintable() for line in text.splitlines())


def test_hostile_names_and_keys_through_the_cli_touch_only_the_store_file(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each hostile name (with hostile keys) is created, read, listed and deleted through the
    command line: every one round-trips exactly, no file appears anywhere but the store file
    (and its lock), and text output shows odd names escaped, one per line."""
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    store = tmp_path / "store" / "secrets.json"
    env = {"STACKSECRETS_STORE": store.as_uri()}
    keys = {"../k": "v1", "a/b": "v2", "x?y#z": "v3", "new\nkey": "v4", "esc\x1b[0m": "v5"}
    for name in HOSTILE:
        created = cli.invoke(
            "secret", "create", name, "--values-file", "-", env=env, stdin=json.dumps(keys)
        )
        assert _printable_lines(created.output)
        if not _referenceable(name):
            # No reference could name it: the CLI refuses to create it; the store holds it.
            assert created.exit_code == 2, created.output
            assert "no reference could name a secret called" in created.output
            anyio.run(_create_directly, store, name, keys)
            continue
        assert created.exit_code == 0, created.output
        shown = cli.invoke("secret", "get", name, "--show-values", "--json", env=env)
        assert json.loads(shown.stdout) == {"name": name, "values": keys}
        masked = cli.invoke("secret", "get", name, env=env)
        assert _printable_lines(masked.output)
        assert masked.stdout.count("\n") == 1 + len(keys)
    listed = cli.invoke("secret", "list", "--json", env=env)
    assert sorted(json.loads(listed.stdout)) == sorted(HOSTILE)
    text = cli.invoke("secret", "list", env=env).stdout
    assert _printable_lines(text)
    assert text.count("\n") == len(HOSTILE)
    assert _files(tmp_path) == {
        "work",
        "work/deeper",
        "store",
        "store/secrets.json",
        "store/secrets.json.lock",
    }
    for name in HOSTILE:
        assert cli.invoke("secret", "delete", name, "--yes", env=env).exit_code == 0
    assert json.loads(cli.invoke("secret", "list", "--json", env=env).stdout) == []


def _referenceable(name: str) -> bool:
    return not any(char.isspace() or char in ".{}" for char in name)


async def _create_directly(store: Path, name: str, values: dict[str, str]) -> None:
    async with FileStore(store) as file_store:
        await file_store.create_secret(name, values)


def test_a_hostile_stack_cannot_forge_report_lines(tmp_path: Path) -> None:
    """Stack, component and secret names and keys with newlines and terminal escapes are
    shown escaped: the report keeps its shape (one line per problem and per usage), and every
    line is printable."""
    stack = Stack(
        "s\n  missing secret: 'forged'",
        [
            Component(
                "orchestrator\nOK: all good\x1b[2J",
                "x\x1b[31m",
                "n\ny",
                {"k\n": "{{ghost\x1b[5m.key}}", "url": "{{no-dot\n\x1b[1m}}"},
            )
        ],
    )

    (tmp_path / "s.json").touch()  # an empty store

    async def validate() -> str:
        async with AsyncClient(f"file://{tmp_path / 's.json'}") as client:
            return (await client.validate_stack(stack)).to_text()

    text = anyio.run(validate)
    assert _printable_lines(text)
    lines = text.splitlines()
    assert lines[0].startswith("Secret validation at level")
    assert lines[-1].startswith("Store: file://")  # then the summary, then the store
    assert [line.strip().split(":")[0] for line in lines[1:-2] if not line.startswith("    ")] == [
        "invalid reference",
        "missing secret",
    ]
    assert len(lines) == 1 + 2 * 2 + 2  # title, two problems with one usage each, summary, store


@pytest.mark.zenml
@pytest.mark.anyio
async def test_hostile_keys_on_zenml_travel_only_in_bodies(
    zenml_server: ZenMLServer, unique_prefix: str
) -> None:
    """Keys with / .. ? # % quotes, newlines and escapes are stored and read back exactly; no
    request goes anywhere but /secrets or /secrets/<uuid>."""
    keys = {"../k": "1", "a/b": "2", "x?y#z": "3", "%2F": "4", 'q"u': "5", "n\nl": "6", "\x1b": "7"}
    name = f"{unique_prefix}keys"
    recorder = RecordingTransport()
    sent = recorder.sent
    store = ZenMLStore(
        zenml_server.url,
        username=zenml_server.username,
        password=zenml_server.password,
        token=zenml_server.admin_token,
        transport=recorder,
    )
    async with store:
        await store.create_secret(name, keys)
        assert (await store.get_secret(name)).secret_values == keys
        await store.update_secret(name, {"../k": "changed"}, remove_keys=["a/b"])
        after = (await store.get_secret(name)).secret_values
        await store.delete_secret(name)
    assert after == {**{k: v for k, v in keys.items() if k != "a/b"}, "../k": "changed"}
    for request in sent:
        path = request.url.path
        assert path == "/api/v1/secrets" or uuid.UUID(path.removeprefix("/api/v1/secrets/"))


@pytest.mark.zenml
def test_hostile_names_through_the_cli_reach_zenml_intact(
    cli: Cli, zenml_server: ZenMLServer, unique_prefix: str
) -> None:
    """Names with path, query and fragment characters, created through the command line on
    a ZenML server, arrive as exactly that name (no other secret appears) and read back."""
    env = {
        "STACKSECRETS_STORE": zenml_server.store_url,
        "ZENML_STORE_USERNAME": zenml_server.username,
        "ZENML_STORE_PASSWORD": zenml_server.password,
    }
    # Names a reference can use (no '.' or whitespace), still full of URL syntax.
    names = [f"{unique_prefix}/x/?y=1#z", f"{unique_prefix}%2F&a=b\"q'"]
    for name in names:
        assert cli.invoke("secret", "create", name, "--k=v", env=env).exit_code == 0
    unreferenceable = cli.invoke("secret", "create", f"{unique_prefix}../x y", "--k=v", env=env)
    assert unreferenceable.exit_code == 2
    rest = zenml_server.rest()
    found = rest.get("/secrets", params={"name": f"startswith:{unique_prefix}", "size": 100})
    on_server = sorted(item["name"] for item in found.json()["items"])
    deleted = [cli.invoke("secret", "delete", name, "--yes", env=env).exit_code for name in names]
    assert on_server == sorted(names)
    assert deleted == [0, 0]


# ---------------------------------------------------------------------- settings with mistakes


@pytest.mark.parametrize(
    ("env", "says"),
    [
        pytest.param({"STACKSECRETS_STORE": "garbage"}, "has no scheme", id="no-scheme"),
        pytest.param(
            {"STACKSECRETS_STORE": "zenml+http://127.0.0.1:notaport"},
            "bad port in the ZenML store URL",
            id="bad-port",
        ),
        pytest.param(
            {"STACKSECRETS_STORE": "zenml+http://127.0.0.1:8080"},
            "set ZENML_STORE_API_KEY, or ZENML_STORE_USERNAME and ZENML_STORE_PASSWORD",
            id="no-credentials",
        ),
        pytest.param(
            {"STACKSECRETS_STORE": "zenml+http://127.0.0.1:8080", "ZENML_STORE_USERNAME": "u"},
            "set ZENML_STORE_PASSWORD",
            id="no-password",
        ),
        pytest.param(
            {"STACKSECRETS_STORE": "zenml://zen.example.com"},
            "zenml+https://host or zenml+http://host:port",
            id="zenml-without-protocol",
        ),
        pytest.param(
            {"STACKSECRETS_STORE": "zenml://"},
            "ZENML_STORE_URL does not hold an http(s):// server URL",
            id="zenml-without-server",
        ),
        pytest.param(
            {"STACKSECRETS_STORE": "file:///tmp/some/folder/"},
            "names a folder",
            id="file-folder",
        ),
        pytest.param(
            {"STACKSECRETS_STORE": "memory://", "ZENML_SECRET_VALIDATION_LEVEL": "bogus"},
            "ZENML_SECRET_VALIDATION_LEVEL",
            id="zenml-level-variable",
        ),
        pytest.param(
            {"STACKSECRETS_STORE": "admin:pw-hidden-9@zen.example.com"},
            "'zen.example.com' has no scheme",
            id="credentials-without-scheme",
        ),
    ],
)
def test_setting_mistakes_exit_two_saying_what_to_fix(
    cli: Cli, tmp_path: Path, env: dict[str, str], says: str
) -> None:
    """A store URL or variable with a mistake exits 2 with one line that names the fix (and
    never a password), with no traceback."""
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        "stacks:\n  - name: s\n    components:\n      - {type: t, flavor: f, name: n, "
        "configuration: {k: '{{a.b}}'}}\n"
    )
    result = cli.invoke("validate", str(stack), env=env)
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert result.stderr.startswith("stacksecrets: error: ")
    assert result.stderr.count("\n") == 1
    assert ("pw-hidden-9" in result.output) is False


@pytest.mark.parametrize(
    ("make", "says"),
    [
        pytest.param(lambda: Client("garbage"), "has no scheme", id="client-url"),
        pytest.param(lambda: AsyncClient("memory://", level="bogus"), "use one of", id="level"),
        pytest.param(lambda: AsyncClient("sqlite:///x.db"), "not supported", id="scheme"),
        pytest.param(lambda: FileStore(""), "needs a path", id="empty-path"),
        pytest.param(
            lambda: ZenMLStore("http://h", username="u"), "no password for user 'u'", id="no-pw"
        ),
    ],
)
def test_api_setting_mistakes_raise_configuration_error(make: Callable[[], Any], says: str) -> None:
    """The same mistakes through the API raise ConfigurationError (a ValueError) naming the fix."""
    with pytest.raises(ConfigurationError) as caught:
        make()
    assert says in str(caught.value)
    assert isinstance(caught.value, ValueError)


# ---------------------------------------------------------------------- loaders under fuzzing

#: Pieces of YAML and JSON, so that generated files get past the first character often.
YAML_TOKENS = st.sampled_from(
    [
        "stacks:", "\n", "  ", "- ", "name: ", "components:", "type: ", "flavor: ",
        "configuration:", "settings:", "{", "}", "[", "]", ", ", ": ", "&a ", "*a", "<<: ",
        "!!python/object:os.system ", "!!binary ", "'", '"', "{{s.k}}", "{{", "}}", "#", "---",
        "...", "null", "~", "1e999", "0x1F", "ü名", "\t", "\\", "%YAML 1.1\n", "? ", "|", ">",
    ]
)  # fmt: skip


def _load(tmp_path: Path, suffix: str, data: bytes) -> None:
    """Load ``data`` as a stack file: stacks or a StackLoadError; anything else fails."""
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        stacks = load_stack_file(path)
    except StackLoadError as exc:
        assert str(path) in str(exc)  # noqa: PT017 - either outcome is fine; only its shape is checked
    else:
        assert all(isinstance(stack, Stack) for stack in stacks)


@settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".yaml", ".json", ".yml"]))
def test_binary_junk_is_a_stack_load_error(tmp_path: Path, data: bytes, suffix: str) -> None:
    """Arbitrary bytes as a stack file give stacks or a StackLoadError naming the file, each
    within two seconds; never another exception."""
    _load(tmp_path, suffix, data)


@settings(
    max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pieces=st.lists(st.one_of(YAML_TOKENS, st.text(max_size=8)), max_size=120))
def test_yaml_like_text_is_loaded_or_refused_clearly(tmp_path: Path, pieces: list[str]) -> None:
    """Text built from YAML and JSON pieces (anchors, aliases, tags, merge keys, references,
    unicode) gives stacks or a StackLoadError naming the file, within two seconds."""
    text = "".join(pieces)
    _load(tmp_path, ".yaml", text.encode("utf-8", errors="surrogatepass"))
    _load(tmp_path, ".json", text.encode("utf-8", errors="surrogatepass"))
