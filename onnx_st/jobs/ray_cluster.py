"""The Ray session of a job: the running one, a cluster at an address, or a local cluster on 127.0.0.1."""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

CLUSTER_MODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch for its cluster mode (on by default on Linux); ``0`` keeps a local cluster on 127.0.0.1."""
LOOPBACK = "127.0.0.1"

logger = logging.getLogger(__name__)


@contextmanager
def loopback_only() -> Iterator[None]:
    """Ray's cluster mode off while a local cluster starts in this process, so that it listens on 127.0.0.1.

    In cluster mode Ray replaces a loopback address by the machine's network address and binds its
    GCS, raylet and object store there. Ray reads :data:`CLUSTER_MODE_ENV` once, when ``ray`` is
    imported, so the flag it derived is switched too; the processes the cluster starts inherit the
    variable. Both are restored on exit.
    """
    constants: Any = importlib.import_module("ray._private.ray_constants")
    saved_env, saved_flag = os.environ.get(CLUSTER_MODE_ENV), constants.ENABLE_RAY_CLUSTER
    os.environ[CLUSTER_MODE_ENV] = "0"
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(CLUSTER_MODE_ENV, None)
        else:
            os.environ[CLUSTER_MODE_ENV] = saved_env


def connect(ray: ModuleType, address: str | None) -> bool:
    """Join the running Ray session, else the cluster at ``address``, else start a local one on 127.0.0.1.

    ``address`` ``None`` or ``"local"`` means the local cluster. Returns whether this call started or
    joined the session (and so must shut it down).
    """
    if ray.is_initialized():
        return False
    if address not in (None, "local"):
        ray.init(address=address, logging_level=logging.WARNING)
        return True
    with loopback_only():  # "local": a new cluster even when RAY_ADDRESS is set or `ray start` ran here
        ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    address = gcs_address(ray)
    if address is not None and address.rpartition(":")[0] != LOOPBACK:
        logger.warning("the local Ray cluster listens on %s, not on %s only", address, LOOPBACK)
    return True


DRAIN_SECONDS = 30.0
"""How long :func:`disconnect` waits for the session's own threads (Ray Data's executor) to end."""


def session_threads() -> set[threading.Thread]:
    """The threads alive now: taken right after :func:`connect`, so that :func:`disconnect` can tell the
    threads Ray Data started for the job from the ones ``ray.init`` started."""
    return set(threading.enumerate())


def disconnect(ray: ModuleType, started_with: set[threading.Thread], timeout: float = DRAIN_SECONDS) -> None:
    """Shut down a session :func:`connect` started or joined, after the threads the job added have ended.

    Ray Data's executor gives its scheduling thread two seconds to stop; on a loaded machine it is
    still calling Ray after that, and any Ray call made without a session starts one again
    (``ray.init()`` from that thread). Auto-connection is therefore off while the job's threads are
    waited for (at most ``timeout`` seconds) and until the session is shut down.
    """
    hook: Any = importlib.import_module("ray._private.auto_init_hook")
    saved = hook.enable_auto_connect
    hook.enable_auto_connect = False
    try:
        deadline = time.monotonic() + timeout
        for thread in set(threading.enumerate()) - started_with:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        stragglers = sorted(t.name for t in set(threading.enumerate()) - started_with if t.is_alive())
        if stragglers:
            logger.warning("shutting Ray down while these threads still run: %s", ", ".join(stragglers))
        ray.shutdown()
    finally:
        hook.enable_auto_connect = saved


def gcs_address(ray: ModuleType) -> str | None:
    """``HOST:PORT`` of the connected cluster's GCS (``None`` through Ray Client, which does not expose it)."""
    if ray.util.client.ray.is_connected():
        return None
    return str(ray.get_runtime_context().gcs_address)


__all__ = ["CLUSTER_MODE_ENV", "DRAIN_SECONDS", "LOOPBACK", "connect", "disconnect", "gcs_address", "loopback_only",
           "session_threads"]
