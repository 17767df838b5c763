"""No secret value, password or token ever leaves through logs, errors, reprs or CLI output.

``test_nothing_secret_escapes`` runs every API call (``AsyncClient`` and ``Client``) and every
CLI command (``validate --fix`` on a pseudo-terminal too, its values typed at the hidden
prompts), on success and on each error path, against the local file store and against a
real ZenML server, with structlog rendering every event at DEBUG and the stdlib root logger at
DEBUG (httpx's and httpcore's own logs included; the CLI runs with ``-vv``). Everything
captured (log output, stdout, stderr, exception messages, reprs and tracebacks, reports in text
and JSON) is then searched for every secret value (and its URL-encoded and base64 forms), the
ZenML admin password, the API key and every bearer token, and for anything shaped like a JWT:
zero hits. The only place a value may appear is the stdout of ``secret get --show-values``.

The other tests check the redaction processor applications can add to their own structlog
configuration (``stacksecrets.redact_secrets``).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import secrets
import socket
import subprocess
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
import structlog

from cli_runner import Cli
from moto_fixtures import MotoServer, aws_variables
from openbao_fixtures import OpenBao
from pty_cli import spawn
from recording_transport import RecordingTransport
from stacksecrets import (
    AsyncClient,
    Client,
    Component,
    SecretRedactor,
    Stack,
    StackSecretsError,
    redact_secrets,
)
from stacksecrets.stores import VaultStore, ZenMLStore, open_store
from zenml_fixtures import ZenMLServer

JWT = re.compile(r"eyJ[\w-]{6,}\.[\w-]{6,}")


def _value(label: str) -> str:
    # '/', '+' and ' ' make the URL-encoded and base64 forms differ from the value itself.
    return f"{label}/{secrets.token_hex(6)}+v w"


@attrs.define
class Capture:
    """Everything that could leak, gathered in one place, and what must not be in it."""

    texts: list[str] = attrs.field(factory=list)
    #: Text in which secret values may appear: stdout of ``secret get --show-values``.
    revealed: list[str] = attrs.field(factory=list)
    forbidden: set[str] = attrs.field(factory=set)

    def forbid(self, *values: str) -> None:
        for value in values:
            raw = value.encode()
            self.forbidden.update(
                {
                    value,
                    urllib.parse.quote(value, safe=""),
                    urllib.parse.quote_plus(value),
                    base64.b64encode(raw).decode().rstrip("="),
                    base64.urlsafe_b64encode(raw).decode().rstrip("="),
                }
            )

    def add(self, *items: object) -> None:
        """A repr (and str) of each object, and for exceptions their whole chain."""
        for item in items:
            if isinstance(item, BaseException):
                self.texts.append("".join(traceback.format_exception(item)))
                seen: BaseException | None = item
                while seen is not None:
                    self.texts.extend([str(seen), repr(seen)])
                    seen = seen.__cause__ or seen.__context__
            else:
                self.texts.extend([repr(item), str(item)])

    async def error_of(self, call: Callable[[], Any]) -> BaseException:
        """Run ``call``; it must raise a stacksecrets error, which is captured."""
        with pytest.raises(StackSecretsError) as caught:
            await call()
        self.add(caught.value)
        return caught.value

    async def outcome_of(self, call: Callable[[], Any]) -> None:
        """Run ``call`` and capture its result, or the stacksecrets error it raised."""
        try:
            result = await call()
        except StackSecretsError as exc:
            self.add(exc)
        else:
            self.add(result)
            if hasattr(result, "to_json"):
                self.texts.extend([result.to_text(), result.to_json()])

    def leaks(self) -> list[str]:
        """Where a forbidden string shows: descriptions only, never the string itself."""
        found = []
        for number, text in enumerate(self.texts):
            hits = sum(secret in text for secret in self.forbidden)
            if hits:
                found.append(f"text #{number} holds {hits} forbidden string(s)")
            if JWT.search(text):
                found.append(f"text #{number} holds something shaped like a JWT")
        return found


@pytest.fixture
def debug_everything() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """structlog rendering every event at DEBUG, the stdlib root logger at DEBUG (httpx and
    httpcore included), each into a buffer; the previous configuration restored after."""
    events, records = io.StringIO(), io.StringIO()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(events),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    handler = logging.StreamHandler(records)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield events, records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)  # structlog is restored by conftest's autouse fixture


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@attrs.frozen
class Target:
    """A store to run everything against, and how to reach it from the API and the CLI."""

    url: str
    env: dict[str, str] = attrs.field(repr=False)
    #: Store URLs (or environments) that must fail: (description, url, env).
    failures: tuple[tuple[str, str, dict[str, str]], ...] = attrs.field(repr=False)


def _stack(name: str, a: str, b: str, *, broken: bool = False) -> Stack:
    config: dict[str, Any] = {
        "password": f"{{{{{a}.password}}}}",
        "url": f"postgresql://{{{{{a}.user}}}}:{{{{{a}.password}}}}@db:5432/runs",
        "token": f"{{{{ {b}.token }}}}",
    }
    if broken:
        config.update({"gone": "{{no-such-secret.k}}", "typo": f"{{{{{a}.pasword}}}}"})
    return Stack(name, [Component("experiment_tracker", "mlflow", "tracker", config)])


async def _api_calls(capture: Capture, target: Target, prefix: str) -> None:
    """Every AsyncClient call on the target, successes and failures."""
    a, b = f"{prefix}api-a", f"{prefix}api-b"
    first = {"user": _value("api-user"), "password": _value("api-password")}
    token = {"token": _value("api-token")}
    newer = _value("api-newer")
    capture.forbid(*first.values(), *token.values(), newer)
    good, broken = _stack("good", a, b), _stack("broken", a, b, broken=True)

    # A ZenML store records its login answers, so their tokens are forbidden in all output.
    recorder = RecordingTransport()
    store = (
        ZenMLStore.from_url(target.url, transport=recorder)
        if target.url.startswith("zenml")
        else open_store(target.url)
    )
    async with store, AsyncClient(store) as client:
        await client.create_secret(a, first)
        await client.create_secret(b, token)
        await capture.error_of(lambda: client.create_secret(a, first))
        capture.add(client, client.store, await client.list_secrets())
        capture.add(await client.get_secret(a))
        for level in ("NONE", "SECRET_EXISTS", "SECRET_AND_KEY_EXISTS"):
            report = await client.validate_stacks([good, broken], level=level)
            capture.add(report, report.to_text(), report.to_json())
        resolved = await client.resolve_stack(good)
        capture.add(resolved, *resolved.components[0].configuration.values())
        capture.texts.append(f"{resolved.components[0].configuration['url']}")
        await capture.error_of(lambda: client.resolve_stack(broken))
        await capture.error_of(lambda: client.get_secret("no-such-secret"))
        await client.update_secret(a, {"password": newer}, remove_keys=["user"])
        capture.add(await client.get_secret(a))
        await client.delete_secret(b)
        await capture.error_of(lambda: client.delete_secret(b))
        await capture.error_of(lambda: client.update_secret(b, {"x": newer}))
        await client.delete_secret(a)
    if target.url.startswith("zenml"):
        assert recorder.tokens, "the store logged in, so a token went by"
    capture.forbid(*recorder.tokens)

    for _what, url, env in target.failures:
        with Environment(env):
            try:
                client = AsyncClient(url, deadline=20, retry_attempts=2, retry_wait_max=0.05)
            except StackSecretsError as exc:
                capture.add(exc)
                continue
            async with client:
                await capture.error_of(lambda client=client: client.get_secret(a))
                await capture.outcome_of(lambda client=client: client.validate_stack(good))


def _sync_calls(capture: Capture, target: Target, prefix: str) -> None:
    """The blocking Client's calls on the target."""
    name = f"{prefix}sync"
    values = {"user": _value("sync-user"), "password": _value("sync-password")}
    token = {"token": _value("sync-token")}
    capture.forbid(*values.values(), *token.values())
    good = _stack("sync", name, f"{name}-t")
    with Client(target.url) as client:
        client.create_secret(name, values)
        client.create_secret(f"{name}-t", token)
        capture.add(client, client.get_secret(name), client.list_secrets())
        report = client.validate_stack(_stack("sync", name, f"{name}-t", broken=True))
        capture.add(report, report.to_text(), report.to_json())
        capture.add(client.resolve_stack(good))
        for call in (
            lambda: client.get_secret(f"{name}-missing"),
            lambda: client.create_secret(name, values),
        ):
            with pytest.raises(StackSecretsError) as caught:
                call()
            capture.add(caught.value)
        client.update_secret(name, {"password": values["password"] + "2"})
        client.delete_secret(name)
        client.delete_secret(f"{name}-t")


class Environment:
    """Set environment variables for a block (the API reads credentials from them)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for key, value in self.env.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value

    def __exit__(self, *exc: object) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


STACK_YAML = """\
stacks:
  - name: cli
    components:
      - type: experiment_tracker
        flavor: mlflow
        name: tracker
        configuration:
          username: "{{NAME.user}}"
          password: "{{NAME.password}}"
          url: "postgresql://{{NAME.user}}:{{NAME.password}}@db/runs"
          typo: "{{NAME.pasword}}"
          gone: "{{no-such-secret.key}}"
"""


def _cli_calls(cli: Cli, capture: Capture, target: Target, prefix: str, tmp_path: Path) -> None:
    """Every CLI command, at -vv (structlog and the stdlib root logger at DEBUG)."""
    name = f"{prefix}cli"
    user, password, newer = _value("cli-user"), _value("cli-password"), _value("cli-newer")
    capture.forbid(user, password, newer)
    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text(STACK_YAML.replace("NAME", name))

    def run(
        *args: str, stdin: str | None = None, env: dict[str, str] | None = None, url: str = ""
    ) -> subprocess.CompletedProcess[str]:
        result = cli(
            "-vv", *args, store=url or target.url, env={**target.env, **(env or {})}, stdin=stdin
        )
        if "--show-values" in args:
            capture.revealed.append(result.stdout)
            capture.texts.append(result.stderr)
        else:
            capture.texts.extend([result.stdout, result.stderr])
        return result

    values = json.dumps({"user": user, "password": password})
    assert run("secret", "create", name, "--values-file", "-", stdin=values).returncode == 0
    assert run("secret", "create", name, f"--user={user}").returncode == 1
    assert run("secret", "get", name).returncode == 0
    assert run("secret", "get", name, "--json").returncode == 0
    shown = run("secret", "get", name, "--show-values", "--json")
    assert json.loads(shown.stdout)["values"]["password"] == password
    assert run("secret", "list").returncode == 0
    assert run("secret", "list", "--json").returncode == 0
    assert run("validate", str(stack_file)).returncode == 1
    assert run("validate", str(stack_file), "--json").returncode == 1
    assert run("secret", "update", name, f"--password={newer}").returncode == 0
    _fix_calls(cli, capture, target, name, tmp_path)
    assert run("secret", "get", "no-such-secret").returncode == 1
    assert run("secret", "delete", name, "--yes").returncode == 0
    assert run("secret", "update", name, f"--password={newer}").returncode == 1
    for _what, url, env in target.failures:
        result = run("validate", str(stack_file), "--deadline", "20", url=url, env=env)
        # 2: configuration (a refused login included); 3: the store is down.
        assert result.returncode in {2, 3}


def _fix_calls(cli: Cli, capture: Capture, target: Target, name: str, tmp_path: Path) -> None:
    """``validate --fix`` on a pseudo-terminal: values typed at its hidden prompts (a missing
    key of ``name``, a missing secret), at -vv; then its dry run."""
    fixed = {name: {"pasword": _value("cli-fix-key")}, f"{name}-new": {"key": _value("cli-fix")}}
    capture.forbid(*(value for keys in fixed.values() for value in keys.values()))
    stack_file = tmp_path / "fix-stack.yaml"
    stack_file.write_text(STACK_YAML.replace("NAME", name).replace("no-such-secret", f"{name}-new"))
    args = ("-vv", "validate", str(stack_file), "--fix")
    pty = spawn(cli, *args, store=target.url, env=target.env)
    answered = pty.answer(fixed)
    assert pty.finish() == 0
    capture.texts.append(pty.output)
    assert len(answered) == 2
    dry = cli(*args, "--dry-run", store=target.url, env=target.env, stdin="")
    assert dry.returncode == 0
    capture.texts.extend([dry.stdout, dry.stderr])
    assert (
        cli("secret", "delete", f"{name}-new", "--yes", store=target.url, env=target.env).returncode
        == 0
    )


#: Vault and AWS run in ``nox -s slow`` (about 30 s each); file and ZenML in every run.
@pytest.fixture(
    params=[
        "file",
        "zenml",
        pytest.param("vault", marks=pytest.mark.slow),
        pytest.param("aws", marks=pytest.mark.slow),
    ]
)
def target(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Target, Capture]]:
    """The file store, the real ZenML server, or AWS Secrets Manager (moto's server), with
    their credentials forbidden in output."""
    capture = Capture()
    if request.param == "aws":
        moto: MotoServer = request.getfixturevalue("moto_server")
        key, token, wrong = _value("aws-key"), _value("aws-token"), _value("aws-wrong")
        capture.forbid(key, token, wrong)
        env = {**aws_variables(moto.url, key, tmp_path), "AWS_SESSION_TOKEN": token}
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        closed = f"http://127.0.0.1:{_closed_port()}"
        failures = (
            ("unreachable", "aws-sm://", {"AWS_ENDPOINT_URL_SECRETS_MANAGER": closed}),
            ("key pasted in the URL", f"aws-sm://?aws_secret_access_key={wrong}", {}),
        )
        yield Target("aws-sm://?prefix=leaks/", env, failures), capture
        return
    if request.param == "file":
        corrupt = tmp_path / "corrupt.json"
        hidden = _value("corrupt")
        capture.forbid(hidden)
        corrupt.write_text('{"version": 1, "secrets": {"x": {"k": "' + hidden + '"}')
        blocked = tmp_path / "a-file"
        blocked.write_text("")
        failures = (
            ("corrupt store file", f"file://{corrupt}", {}),
            ("store below a file", f"file://{blocked}/secrets.json", {}),
        )
        yield Target(f"file://{tmp_path / 'store' / 'secrets.json'}", {}, failures), capture
        return

    if request.param == "vault":
        yield _vault_target(request, monkeypatch, capture)
        return

    server: ZenMLServer = request.getfixturevalue("zenml_server")
    api_key = server.create_service_account(f"leak-{secrets.token_hex(4)}")
    wrong = _value("wrong-password")
    capture.forbid(server.password, api_key, server.admin_token, wrong)
    env = {"ZENML_STORE_USERNAME": server.username, "ZENML_STORE_PASSWORD": server.password}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    closed = _closed_port()
    host = server.url.removeprefix("http://")
    failures = (
        ("wrong password", server.store_url, {"ZENML_STORE_PASSWORD": wrong}),
        ("wrong API key", f"zenml+http://{host}?api_key=ZENKEY_{wrong}", {}),
        ("unreachable", f"zenml+http://127.0.0.1:{closed}", {}),
        ("password in URL", f"zenml+http://admin:{server.password}@127.0.0.1:{closed}", {}),
        ("no scheme", f"admin:{server.password}@{host}", {}),
    )
    capture.texts.append(repr(ZenMLStore(server.url, api_key=api_key)))
    yield Target(server.store_url, env, failures), capture


def _vault_target(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, capture: Capture
) -> tuple[Target, Capture]:
    """The real OpenBao server, with a read-write token; its tokens forbidden in output."""
    bao: OpenBao = request.getfixturevalue("openbao")
    bao.policy("leak-rw", 'path "secret/*" { capabilities = ["create", "read", "update", '
               '"delete", "list"] }')  # fmt: skip
    token, revoked = bao.token("leak-rw"), bao.token("leak-rw")
    bao.revoke(revoked)
    capture.forbid(bao.root_token, token, revoked)
    env = {"VAULT_TOKEN": token}
    monkeypatch.setenv("VAULT_TOKEN", token)
    closed = _closed_port()
    failures = (
        ("revoked token", bao.store_url, {"VAULT_TOKEN": revoked}),
        ("unreachable", f"vault+http://127.0.0.1:{closed}/secret", {}),
        ("token in URL", f"vault+http://127.0.0.1:{closed}/secret?token={revoked}", {}),
        ("token before host", f"vault+http://{revoked}@127.0.0.1:{closed}/secret", {}),
    )
    capture.texts.append(repr(VaultStore(bao.address, token=token)))
    return Target(bao.store_url, env, failures), capture


def test_nothing_secret_escapes(
    target: tuple[Target, Capture],
    debug_everything: tuple[io.StringIO, io.StringIO],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    cli: Cli,
) -> None:
    """Every API call and CLI command, on success and on every error path, at DEBUG
    everywhere: no secret value (or its encoded forms), password, API key or token appears
    in any log line, output, exception message, traceback or repr."""
    store, capture = target
    prefix = f"leak-{secrets.token_hex(4)}-"
    anyio.run(_api_calls, capture, store, prefix)
    _sync_calls(capture, store, prefix)
    _cli_calls(cli, capture, store, prefix, tmp_path)
    events, records = debug_everything
    out, err = capsys.readouterr()
    capture.texts.extend([events.getvalue(), records.getvalue(), out, err])
    # The logs really are at DEBUG, httpx's included (for the ZenML server).
    assert "stacksecrets.validate.done" in events.getvalue()
    if store.url.startswith(("zenml", "vault")):
        assert "httpcore" in records.getvalue()
        assert "HTTP Request: POST" in records.getvalue()
    if store.url.startswith("aws-sm"):  # botocore's DEBUG records were there, and withheld
        assert "botocore.endpoint DEBUG botocore DEBUG record withheld" in records.getvalue()
    # --show-values did show the values: the search would have found them elsewhere.
    assert capture.revealed
    assert all(any(s in text for s in capture.forbidden) for text in capture.revealed)
    assert capture.leaks() == []


# ---------------------------------------------------------------------- the redaction processor


def _render(redactor: SecretRedactor, **event: Any) -> str:
    """An application's event, through its processors: the redactor, then a renderer."""
    redacted = redactor(None, "info", dict(event))
    return structlog.processors.KeyValueRenderer(sort_keys=True)(None, "info", redacted)


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda v: v, id="plain"),
        pytest.param(lambda v: base64.b64encode(v.encode()).decode(), id="base64"),
        pytest.param(lambda v: base64.b64encode(v.encode()).decode().rstrip("="), id="b64-bare"),
        pytest.param(lambda v: base64.urlsafe_b64encode(v.encode()).decode(), id="b64-urlsafe"),
        pytest.param(lambda v: urllib.parse.quote(v, safe=""), id="url-encoded"),
        pytest.param(urllib.parse.quote_plus, id="form-encoded"),
    ],
)
def test_redactor_masks_a_value_in_each_form(encode: Callable[[str], str]) -> None:
    """A registered value is masked in an application's event plainly, in base64 (padded,
    bare, URL-safe) and URL-encoded, also inside longer strings, nested containers and
    exceptions."""
    value = "s3cr3t/value+with spaces?"
    redactor = SecretRedactor()
    redactor.add([value])
    form = encode(value)
    line = _render(
        redactor,
        event=f"connecting with {form}",
        url=f"https://user:{form}@host/path",
        nested={"headers": [f"Bearer {form}"]},
        error=ValueError(f"refused {form}"),
    )
    assert (form in line) is False
    assert line.count("**********") == 4


def test_redactor_masks_values_registered_between_events() -> None:
    """Values are registered as secrets are read (their encoded forms worked out when an
    event is next redacted): one registered after an event was redacted is masked in the
    next event, in its encoded forms too, and the earlier values stay masked."""
    redactor = SecretRedactor()
    redactor.add(["first-value"])
    assert "first-value" not in _render(redactor, event="first-value")
    redactor.add(["second/value+x"])
    redactor.add(["first-value"])  # again: nothing new
    line = _render(
        redactor,
        event="first-value second/value+x",
        url=urllib.parse.quote("second/value+x", safe=""),
        token=base64.b64encode(b"second/value+x").decode(),
    )
    assert "value" not in line
    assert line.count("**********") == 4
    redactor.clear()
    assert "first-value" in _render(redactor, event="first-value")


def test_redactor_leaves_short_and_unregistered_values_alone() -> None:
    """Values under four characters are not masked (masking '1' everywhere would ruin logs),
    nor is anything never registered; an empty redactor passes events through unchanged."""
    redactor = SecretRedactor()
    event = {"event": "x", "port": "5432", "flag": "on"}
    assert redactor(None, "info", dict(event)) == event
    redactor.add(["on", "5432"])
    assert redactor(None, "info", dict(event)) == {
        "event": "x",
        "port": "**********",
        "flag": "on",
    }


def test_redactor_masks_a_longer_value_whole_before_its_parts() -> None:
    """When one value contains another, the longer one is masked whole (longest first)."""
    redactor = SecretRedactor()
    redactor.add(["abcd", "abcdefgh"])
    assert redactor.redact("x abcdefgh y abcd") == "x ********** y **********"


def test_values_the_client_reads_are_redacted_in_the_applications_events(
    tmp_path: Path,
) -> None:
    """An application that adds ``redact_secrets`` to its structlog processors gets every
    value stacksecrets has read masked in its own events, without registering anything."""
    value = _value("app")
    store = f"file://{tmp_path / 'secrets.json'}"
    with Client(store) as client:
        client.create_secret("app-db", {"password": value})
        assert client.get_secret("app-db").secret_values["password"] == value
    line = _render(redact_secrets, event="step started", dsn=f"postgresql://app:{value}@db")
    assert (value in line) is False
    assert "postgresql://app:**********@db" in line


def test_the_security_page_names_only_tests_that_exist() -> None:
    """Every ``tests/<file>.py::<test>`` docs/security-and-reliability.md names is a test
    function in that file, so the page cannot point at evidence that is gone."""
    root = Path(__file__).resolve().parent.parent
    page = (root / "docs" / "security-and-reliability.md").read_text(encoding="utf-8")
    named = set(re.findall(r"tests/(test_\w+\.py)::(test_\w+)", page))
    assert len(named) > 50
    missing = [
        f"{file}::{name}"
        for file, name in sorted(named)
        if not re.search(
            rf"^(async )?def {name}\(",
            (root / "tests" / file).read_text(encoding="utf-8"),
            re.MULTILINE,
        )
    ]
    assert missing == []
