"""Every store stacksecrets ships against the one store contract (docs/stores.md).

The tests are ``StoreContract``'s (tests/store_conformance.py); this file lists the stores,
one factory each, and runs every test on each, on asyncio and trio. A new store joins by adding
its factory to ``FACTORIES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from moto_fixtures import AwsEnv
from openbao_fixtures import OpenBao
from stacksecrets.stores import (
    ChainStore,
    EnvStore,
    FileStore,
    MemoryStore,
    VaultStore,
    ZenMLStore,
)
from stacksecrets.stores._aws import AwsSecretsManagerStore
from stacksecrets.stores._env import variable_name
from store_conformance import StoreContract, StoreFactory, StoreTarget
from zenml_fixtures import ZenMLServer


def memory(request: pytest.FixtureRequest) -> StoreTarget:
    return StoreTarget(open=MemoryStore)


def file(request: pytest.FixtureRequest) -> StoreTarget:
    path: Path = request.getfixturevalue("tmp_path") / "store" / "secrets.json"
    return StoreTarget(open=lambda: FileStore(path, keys=[]))


def encrypted_file(request: pytest.FixtureRequest) -> StoreTarget:
    path: Path = request.getfixturevalue("tmp_path") / "secrets.json"
    key = Fernet.generate_key().decode()
    return StoreTarget(open=lambda: FileStore(path, keys=[key]), credentials=(key,))


#: Where the ZenML store does not follow the contract yet, and why (each runs as strict xfail).
ZENML_GAPS: dict[str, str] = {}


def zenml(request: pytest.FixtureRequest) -> StoreTarget:
    server: ZenMLServer = request.getfixturevalue("zenml_server")

    def cleanup(prefix: str) -> None:
        """Delete this test's secrets (and an empty-named one a gap may have made)."""
        rest = server.rest()
        for query in (f"startswith:{prefix}", "equals:"):
            answer = rest.get("/secrets", params={"name": query, "size": "1000"})
            answer.raise_for_status()
            for item in answer.json()["items"]:
                if item["name"].startswith(prefix) or item["name"] == "":
                    server.delete_secret(item["id"])

    return StoreTarget(
        open=lambda: ZenMLStore(server.url, username=server.username, password=server.password),
        credentials=(server.password,),
        gaps=ZENML_GAPS,
        cleanup=cleanup,
    )


#: Where the Vault store differs from the contract, and why (each runs as strict xfail).
VAULT_GAPS = {
    "test_odd_but_valid_names_are_each_their_own_secret": (
        "Vault names are paths: a control character (a newline) or an empty, '.' or '..' part "
        "is refused with a ConfigurationError naming the rule"
    ),
}


def vault(request: pytest.FixtureRequest) -> StoreTarget:
    server: OpenBao = request.getfixturevalue("openbao")

    def cleanup(prefix: str) -> None:
        """Delete this test's secrets, every version (names at the mount's top level)."""
        rest = server.rest()
        answer = rest.request("LIST", "/secret/metadata/")
        if answer.status_code == 404:
            return
        answer.raise_for_status()
        for name in answer.json()["data"]["keys"]:
            if name.startswith(prefix) and not name.endswith("/"):
                rest.delete(f"/secret/metadata/{name}").raise_for_status()

    return StoreTarget(
        open=lambda: VaultStore(server.address, token=server.root_token),
        credentials=(server.root_token,),
        gaps=VAULT_GAPS,
        cleanup=cleanup,
    )


#: Where the AWS Secrets Manager store differs from the contract, and why (strict xfail).
_AWS_NAMES = (
    "AWS secret names are letters, digits and /_+=.@- only: any other name (a space, a "
    "newline, a non-ASCII letter) is refused with a ConfigurationError naming the rule"
)
AWS_GAPS: dict[str, str] = {
    "test_odd_but_valid_names_are_each_their_own_secret": _AWS_NAMES,
    "test_list_secrets_is_sorted_and_unique": _AWS_NAMES,
}


def aws(request: pytest.FixtureRequest) -> StoreTarget:
    env: AwsEnv = request.getfixturevalue("aws_env")
    # One connection: moto's in-memory backend walks its dict of secrets unlocked
    # (``list_secrets`` in moto/secretsmanager/models.py), so a CreateSecret in another thread
    # can make a ListSecrets answer 500. Fifty tasks still share the store at once.
    return StoreTarget(
        open=lambda: AwsSecretsManagerStore(
            prefix=env.prefix, force_delete_without_recovery=True, max_connections=1
        ),
        credentials=(env.secret_access_key,),
        gaps=AWS_GAPS,
    )


#: Variables around the env stores' own: other programs', and malformed ones they must ignore.
NOISE = {
    "PATH": "/usr/bin",
    "STACKSECRETS_STORE": "memory://",
    "STACKSECRETS_SECRET_no-separator": "noise-1",
    "STACKSECRETS_SECRET___empty-name": "noise-2",
    "STACKSECRETS_SECRET_empty-key__": "noise-3",
}


def env(request: pytest.FixtureRequest) -> StoreTarget:
    """Read-only: the tests put secrets into the mapping the store reads as its environment."""
    environ = dict(NOISE)

    def put(name: str, values: Mapping[str, str]) -> None:
        environ.update({variable_name(name, key): value for key, value in values.items()})

    return StoreTarget(open=lambda: EnvStore(environ=environ), put=put)


def env_prefixed(request: pytest.FixtureRequest) -> StoreTarget:
    """``env://?prefix=MYAPP_``: the default prefix's variables are someone else's."""
    environ = {**NOISE, "STACKSECRETS_SECRET_other__k": "not-mine"}

    def put(name: str, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            environ[variable_name(name, key, prefix="MYAPP_")] = value

    return StoreTarget(open=lambda: EnvStore(prefix="MYAPP_", environ=environ), put=put)


def chain(request: pytest.FixtureRequest) -> StoreTarget:
    """A file store (written to) before an env store holding other secrets."""
    path: Path = request.getfixturevalue("tmp_path") / "chain" / "secrets.json"
    environ = {**NOISE, "STACKSECRETS_SECRET_behind__k": "v"}
    return StoreTarget(
        open=lambda: ChainStore([FileStore(path, keys=[]), EnvStore(environ=environ)])
    )


def chain_read_only(request: pytest.FixtureRequest) -> StoreTarget:
    """Two env stores: every other secret is put in the second, so look-ups go past the first."""
    environ = dict(NOISE)
    count = [0]

    def put(name: str, values: Mapping[str, str]) -> None:
        prefix = ("FIRST_", "SECOND_")[count[0] % 2]
        count[0] += 1
        for key, value in values.items():
            environ[variable_name(name, key, prefix=prefix)] = value

    return StoreTarget(
        open=lambda: ChainStore(
            [
                EnvStore(prefix="FIRST_", environ=environ),
                EnvStore(prefix="SECOND_", environ=environ),
            ]
        ),
        put=put,
    )


FACTORIES: list[object] = [
    pytest.param(memory, id="memory"),
    pytest.param(file, id="file"),
    pytest.param(encrypted_file, id="file-encrypted"),
    pytest.param(zenml, id="zenml", marks=pytest.mark.zenml),
    pytest.param(vault, id="vault"),
    pytest.param(aws, id="aws"),
    pytest.param(env, id="env"),
    pytest.param(env_prefixed, id="env-prefixed"),
    pytest.param(chain, id="chain"),
    pytest.param(chain_read_only, id="chain-read-only"),
]


#: Stores behind a real server: their answers do not depend on the test's event loop, so the
#: contract runs on asyncio only, except where the store's own concurrency is tested.
SERVER_STORES = frozenset({"zenml", "vault", "aws"})
ON_BOTH_BACKENDS = frozenset({"test_many_calls_at_once"})


def trio_not_needed(item: pytest.Function) -> bool:
    """Whether the trio run of ``item`` adds nothing (tests/conftest.py leaves it out)."""
    params = item.callspec.params
    factory = params.get("store_target")
    return (
        params.get("anyio_backend") == "trio"
        and getattr(factory, "__name__", "") in SERVER_STORES
        and item.originalname not in ON_BOTH_BACKENDS
    )


@pytest.fixture(params=FACTORIES)
def store_target(request: pytest.FixtureRequest) -> StoreTarget:
    factory: StoreFactory = request.param
    target = factory(request)
    gap = target.gaps.get(request.function.__name__)
    if gap is not None:
        request.applymarker(pytest.mark.xfail(reason=gap, strict=True))
    return target


class TestShippedStores(StoreContract):
    """The contract, for memory, file (plain and encrypted), ZenML, Vault and environment
    stores and chains of stores."""
