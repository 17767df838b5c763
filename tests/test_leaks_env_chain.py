"""No secret value leaves through logs, errors, reprs or CLI output with the environment store
and a chain of stores (file, then environment): the same search as tests/test_leaks.py, over
every API call and CLI command on success and on each error path, at DEBUG everywhere."""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path

import anyio
import pytest

from cli_runner import Cli
from stacksecrets import AsyncClient, Client, StackSecretsError
from stacksecrets.stores import ChainStore, EnvStore, FileStore
from test_leaks import STACK_YAML, Capture, _stack, _value, debug_everything  # noqa: F401


def _environ(capture: Capture, prefix: str) -> dict[str, str]:
    """Secrets ``<prefix>a`` (user, password) and ``<prefix>b`` (token) as variables."""
    env = {
        f"STACKSECRETS_SECRET_{prefix}a__user": _value("env-user"),
        f"STACKSECRETS_SECRET_{prefix}a__password": _value("env-password"),
        f"STACKSECRETS_SECRET_{prefix}b__token": _value("env-token"),
        f"STACKSECRETS_SECRET_{prefix}cli__user": _value("env-cli-user"),
        f"STACKSECRETS_SECRET_{prefix}cli__password": _value("env-cli-password"),
    }
    capture.forbid(*env.values())
    return env


async def _api_calls(capture: Capture, prefix: str, environ: dict[str, str], path: Path) -> None:
    a, b = f"{prefix}a", f"{prefix}b"
    good, broken = _stack("good", a, b), _stack("broken", a, b, broken=True)
    in_file = {"password": _value("file-password")}
    capture.forbid(*in_file.values())
    for store in (
        EnvStore(environ=environ),
        ChainStore([FileStore(path, keys=[]), EnvStore(environ=environ)]),
    ):
        async with store, AsyncClient(store) as client:
            capture.add(client, store, await client.list_secrets(), await client.get_secret(a))
            for level in ("NONE", "SECRET_EXISTS", "SECRET_AND_KEY_EXISTS"):
                report = await client.validate_stacks([good, broken], level=level)
                capture.add(report, report.to_text(), report.to_json())
            resolved = await client.resolve_stack(good)
            capture.add(resolved, *resolved.components[0].configuration.values())
            await capture.error_of(lambda client=client: client.resolve_stack(broken))
            await capture.error_of(lambda client=client: client.get_secret("no-such-secret"))
            await capture.outcome_of(lambda client=client: client.create_secret(a, in_file))
            await capture.outcome_of(
                lambda client=client: client.update_secret(b, {"token": in_file["password"]})
            )
            await capture.error_of(lambda client=client: client.delete_secret("no-such-secret"))


def test_nothing_secret_escapes_from_env_and_chain_stores(
    debug_everything: tuple[io.StringIO, io.StringIO],  # noqa: F811 - the imported fixture
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cli: Cli,
) -> None:
    """API (async and blocking) and CLI on the env store and on a file-then-env chain:
    no value (or its encoded forms) in any log line, output, message, traceback or repr."""
    capture = Capture()
    prefix = f"leak{secrets.token_hex(3)}-"
    environ = _environ(capture, prefix)
    path = tmp_path / "chain.json"
    anyio.run(_api_calls, capture, prefix, environ, path)

    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    for url in ("env://", ["file://" + str(path), "env://"]):
        with Client(url) as client:
            capture.add(client, client.get_secret(f"{prefix}a"), client.list_secrets())
            report = client.validate_stack(_stack("s", f"{prefix}a", f"{prefix}b", broken=True))
            capture.add(report, report.to_text(), report.to_json())
            written = _value("written")
            capture.forbid(written)
            try:  # refused by the env store, written to the chain's file
                client.create_secret(f"{prefix}new", {"k": written})
            except StackSecretsError as exc:
                capture.add(exc)
            else:
                capture.add(client.get_secret(f"{prefix}new"))

    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text(STACK_YAML.replace("NAME", f"{prefix}cli"))
    for stores in (["--store", "env://"], ["--store", path.as_uri(), "--store", "env://"]):

        def run(*args: str, stores: list[str] = stores) -> int:
            result = cli("-vv", *args, *stores, env=environ)
            if "--show-values" in args:
                capture.revealed.append(result.stdout)
                capture.texts.append(result.stderr)
            else:
                capture.texts.extend([result.stdout, result.stderr])
            return result.returncode

        assert run("secret", "get", f"{prefix}cli") == 0
        assert run("secret", "get", f"{prefix}cli", "--show-values", "--json") == 0
        assert run("secret", "list", "--json") == 0
        assert run("validate", str(stack_file)) == 1
        assert run("validate", str(stack_file), "--json") == 1
        assert run("secret", "get", "no-such-secret") == 1
        assert run("secret", "update", f"{prefix}cli", f"--password={_value('x')}") in {1, 2}
    events, records = debug_everything
    out, err = capsys.readouterr()
    capture.texts.extend([events.getvalue(), records.getvalue(), out, err])
    assert "stacksecrets.validate.done" in events.getvalue()
    assert capture.revealed
    assert all(any(s in text for s in capture.forbidden) for text in capture.revealed)
    shown = json.loads(capture.revealed[0])["values"]
    assert shown["password"] == environ[f"STACKSECRETS_SECRET_{prefix}cli__password"]
    assert capture.leaks() == []
