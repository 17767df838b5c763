"""What the ``stacksecrets`` command's own process may assume: it runs asyncio only and never
httpx's command line (``main`` without arguments calls ``asyncio_only_process``). Cheap to
import: ``--help`` pays for it."""

from __future__ import annotations

import sys
import types

#: Imports a command-line process never uses: (module, the package whose import of it is
#: refused). httpcore imports trio, when installed, only to serve trio callers (its trio
#: backend and locks); httpx imports its own command line (``httpx._main``: rich, pygments).
#: Both catch the ``ImportError`` and go on without.
_UNUSED_IN_THE_CLI = {"trio": "httpcore.", "httpx._main": "httpx"}


class _SkipUnused:
    """A meta path finder that fails the imports in ``_UNUSED_IN_THE_CLI`` made by the named
    package (and no other import of the same module)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        refused_for = _UNUSED_IN_THE_CLI.get(name)
        if refused_for is None:
            return
        frame: types.FrameType | None = sys._getframe(1)  # noqa: SLF001 - who imports
        while frame is not None:
            importer = str(frame.f_globals.get("__name__", ""))
            if importer == refused_for.rstrip(".") or (
                refused_for.endswith(".") and importer.startswith(refused_for)
            ):
                raise ImportError(f"{name}: not used by this command-line process")
            if not importer.startswith(("importlib", "_frozen_importlib")):
                return  # the first importer that is not the import machinery decides
            frame = frame.f_back


def asyncio_only_process() -> None:
    """Say this process is the command line: asyncio only, never httpx's own command line.
    httpcore then does not import trio (which it imports when installed only to serve trio
    callers) and httpx not its command line (rich, pygments): tens of milliseconds of
    start-up each. Every other import of these modules works as before. Not for a library:
    its process may run trio later."""
    if any(isinstance(finder, _SkipUnused) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _SkipUnused())
