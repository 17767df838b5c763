"""Where output goes, and what it may hold.

- The redactor masks a value in every form an event can carry it: a ``secret.values`` mapping
  proxy, a dict key, a repr with escaped backslashes or quotes, a JSON string, an exception's
  repr, an ``exc_info`` traceback, an object whose repr holds it.
- Library code prints nothing on its own: stamina's retry lines reach the application's logging
  only (real processes against a store that refuses connections); the CLI shows them with -v.
- The CLI's log lines escape control characters from hostile names.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from types import MappingProxyType, SimpleNamespace

import pytest
import structlog

from stacksecrets import Secret
from stacksecrets._logging import MASK, SecretRedactor
from stacksecrets.cli._text import escape_controls as _escape_controls

VALUE = "pa\\ss\"w'ord-Hunter2"  # a backslash and both quotes: every repr escapes something


def render(redactor: SecretRedactor, **event: object) -> str:
    out = io.StringIO()
    log = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[redactor, structlog.processors.KeyValueRenderer(sort_keys=True)],
    )
    log.info("event", **event)
    return out.getvalue()


def leaked(text: str) -> bool:
    forms = {VALUE, repr(VALUE)[1:-1], json.dumps(VALUE)[1:-1], "Hunter2"}
    return any(form in text for form in forms)


@pytest.fixture
def redactor() -> SecretRedactor:
    redactor = SecretRedactor()
    redactor.add_secret(Secret("db", {"password": VALUE}))
    return redactor


def test_a_mappingproxy_of_values_is_redacted(redactor: SecretRedactor):
    secret = Secret("db", {"password": VALUE})
    assert isinstance(secret.values, MappingProxyType)
    line = render(redactor, values=secret.values)
    assert not leaked(line)
    assert MASK in line


def test_a_value_used_as_a_dict_key_is_redacted(redactor: SecretRedactor):
    line = render(redactor, lookup={VALUE: "user"}, nested=[{"x": {VALUE: 1}}])
    assert not leaked(line)


@pytest.mark.parametrize(
    "form",
    [
        repr(VALUE),
        str([VALUE]),
        str({"k": VALUE}),
        json.dumps(VALUE),
        json.dumps({"k": VALUE}),
        VALUE.encode("unicode_escape").decode(),
    ],
)
def test_escaped_forms_of_a_value_in_text_are_redacted(redactor: SecretRedactor, form: str):
    assert not leaked(render(redactor, text=f"before {form} after"))


def test_exceptions_are_redacted_in_their_repr_and_in_exc_info_tracebacks(
    redactor: SecretRedactor,
):
    error = ValueError(f"bad {VALUE}")
    assert not leaked(render(redactor, error=error))

    def lookup() -> None:
        raise KeyError(VALUE)

    def fail() -> None:
        try:
            lookup()
        except KeyError as inner:
            raise RuntimeError(f"wrapped {VALUE}") from inner

    with pytest.raises(RuntimeError) as info:
        fail()
    caught = info.value
    for exc_info in (caught, True, (type(caught), caught, caught.__traceback__)):
        try:
            raise caught
        except RuntimeError:
            line = render(redactor, exc_info=exc_info)
        assert "Traceback" in line
        assert "KeyError" in line  # the chained exception is rendered too
        assert not leaked(line)


def test_an_object_whose_repr_holds_a_value_is_redacted_others_kept(redactor: SecretRedactor):
    line = render(redactor, obj=SimpleNamespace(password=VALUE), number=42, flag=True)
    assert not leaked(line)
    assert "number=42" in line
    assert "flag=True" in line


def test_short_values_are_still_left_alone():
    redactor = SecretRedactor()
    redactor.add(["on"])
    assert "mode='on'" in render(redactor, mode="on")


# --- the CLI's log lines ---------------------------------------------------------------------


def test_log_values_with_control_characters_are_escaped():
    event = {
        "event": "stacksecrets.x",
        "name": "evil\x1b[2J\nforged: line",
        "n": 3,
        "exception": "Traceback\n  line\x1b[31m",
    }
    out = _escape_controls(None, "info", dict(event))
    assert out["name"] == "evil\\x1b[2J\\nforged: line"
    assert out["exception"] == "Traceback\n  line\\x1b[31m"  # tracebacks keep their lines
    assert out["n"] == 3


def test_verbose_cli_log_lines_print_no_raw_escape(tmp_path: Path):
    """-vv with a stack file naming a hostile secret: stderr holds no ESC or BEL byte."""
    store = tmp_path / "s.json"
    store.touch()
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        'name: "s\\e[2J"\ncomponents:\n  - type: "t\\a"\n    name: n\n'
        '    configuration: {x: "{{evil\\e[31m\\u0007.key}}"}\n'
    )
    result = run_cli("-vv", "validate", str(stack), "--store", store.as_uri())
    assert result.returncode == 1, result.stderr
    assert "stacksecrets." in result.stderr  # there were log lines
    for text in (result.stderr, result.stdout):
        assert "\x1b" not in text
        assert "\x07" not in text


# --- retries: no output of its own ---------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(*args: str, env: dict[str, str] | None = None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("STACKSECRETS_", "ZENML_"))}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "stacksecrets", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
        check=False,
    )


LIBRARY_CODE = textwrap.dedent(
    """
    import sys
    {setup}
    from stacksecrets import Client, ClientOptions, StoreUnavailableError, stack_from_dict
    options = ClientOptions(retry_attempts=3, retry_wait_initial=0.01, retry_wait_max=0.02)
    stack = stack_from_dict({{"name": "s", "components": [
        {{"type": "t", "name": "n", "configuration": {{"x": "{{{{db.password}}}}"}}}}]}})
    with Client("zenml+http://user:pw@127.0.0.1:{port}", options=options) as client:
        report = client.validate_stack(stack)
    assert not report.ok, report
    sys.stderr.write("done\\n")
    """
)


@pytest.mark.parametrize(
    "setup",
    [
        "",  # nothing configured
        "import logging",  # logging imported, not configured
    ],
)
def test_library_retries_print_nothing_when_the_app_configured_no_logging(setup: str):
    code = LIBRARY_CODE.format(setup=setup, port=closed_port())
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == "done\n"


def test_library_retries_reach_the_applications_structlog_and_logging():
    structlog_setup = (
        "import structlog, logging\n"
        "structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stdout))"
    )
    code = LIBRARY_CODE.format(setup=structlog_setup, port=closed_port())
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "stacksecrets.retry_scheduled" in result.stdout
    assert "stamina.retry_scheduled" not in result.stdout
    stdlib_setup = "import logging\nlogging.basicConfig(level=logging.INFO, stream=sys.stdout)"
    code = LIBRARY_CODE.format(setup=stdlib_setup, port=closed_port())
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "stacksecrets.retry_scheduled" in result.stdout


def test_other_code_keeps_staminas_own_retry_hooks():
    """Only stacksecrets' retries are routed; another library's retry reaches the hooks that
    were in place (here: stamina's structlog default, printing to stdout)."""
    code = textwrap.dedent(
        """
        import stamina, stacksecrets
        @stamina.retry(on=ValueError, attempts=2, wait_initial=0.01)
        def flaky():
            raise ValueError("no")
        try:
            flaky()
        except ValueError:
            pass
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "stamina.retry_scheduled" in result.stdout


def test_the_cli_shows_retries_only_with_v(tmp_path: Path):
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        'name: s\ncomponents:\n  - {type: t, name: n, configuration: {x: "{{db.password}}"}}\n'
    )
    store = f"zenml+http://user:pw@127.0.0.1:{closed_port()}"
    quiet = run_cli("validate", str(stack), "--store", store)
    assert quiet.returncode == 3
    assert "retry" not in quiet.stderr
    assert "retry" not in quiet.stdout
    verbose = run_cli("-v", "validate", str(stack), "--store", store)
    assert verbose.returncode == 3
    assert "stacksecrets.retry_scheduled" in verbose.stderr
    assert "retry" not in verbose.stdout
    assert ":pw@" not in verbose.stderr  # the password is never shown
