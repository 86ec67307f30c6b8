"""The chief: serve the dependable oracle over gRPC until the search ends.

Replaces Keras Tuner 1.4.8's `oracle_chief.start_server`, which binds the
address workers use (a Service name the chief cannot bind), serves one
request at a time, and after the last trial polls every 20 s until every
worker it ever saw has asked for another trial (forever, if one died).
This server binds 0.0.0.0, serves upstream's OracleServicer plus a small
control service (status, heartbeats, hand-backs, error reports), and returns
as soon as the oracle says the search is over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from keras_tuner.src import protos
from keras_tuner.src.distribute.oracle_chief import OracleServicer

from kerasjobs.errors import RunError
from kerasjobs.oracle_client import CONTROL_SERVICE, decode, encode
from kerasjobs.tune_runtime import check_terminated

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.1
# After the end, answer "no trials left" a little longer so that workers
# hear it from the chief rather than from the search record.
LINGER_SECONDS = 1.0


class ContactClock(grpc.ServerInterceptor):
    """Remembers when any worker last sent any request."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def intercept_service(self, continuation: Callable, handler_call_details: Any):
        self.last = time.monotonic()
        return continuation(handler_call_details)


def control_handler(oracle: Any, identity: dict[str, Any]) -> grpc.GenericRpcHandler:
    """The control service's methods, exchanging small JSON objects."""

    def status(request: dict, context: Any) -> dict:
        return {**identity, "state": oracle.search_state(), "message": oracle.failure}

    def heartbeat(request: dict, context: Any) -> dict:
        return {"running": oracle.record_news(request["trial_id"])}

    def release(request: dict, context: Any) -> dict:
        oracle.release(request["tuner_id"], request["trial_id"])
        return {}

    def report(request: dict, context: Any) -> dict:
        oracle.record_error(request["trial_id"], request["message"])
        return {}

    functions = {
        "Status": status,
        "Heartbeat": heartbeat,
        "Release": release,
        "Report": report,
    }
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            function, request_deserializer=decode, response_serializer=encode
        )
        for name, function in functions.items()
    }
    return grpc.method_handlers_generic_handler(CONTROL_SERVICE, handlers)


def start_server(
    oracle: Any, port: int, identity: dict[str, Any], clock: ContactClock
) -> grpc.Server:
    """Serve on 0.0.0.0:port; fail if another process holds the port.

    Raises:
        RunError: the port cannot be bound.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="oracle"),
        interceptors=[clock],
        # gRPC lets two servers share a port by default; a second chief on
        # the same port must fail instead of splitting the workers.
        options=[("grpc.so_reuseport", 0)],
    )
    protos.get_service_grpc().add_OracleServicer_to_server(
        OracleServicer(oracle), server
    )
    server.add_generic_rpc_handlers([control_handler(oracle, identity)])
    try:
        server.add_insecure_port(f"0.0.0.0:{port}")
    except RuntimeError as error:
        raise RunError(
            f"the chief cannot serve on 0.0.0.0:{port} ({error}): is another "
            "process using the port? pick another with --oracle HOST:PORT"
        ) from None
    server.start()
    logger.info("oracle serving on 0.0.0.0:%d", port)
    return server


def serve_search(
    oracle: Any,
    port: int,
    identity: dict[str, Any],
    connect_timeout: float,
    finish: Callable[[str], None],
    progress: Callable[[], None] = lambda: None,
) -> str:
    """Serve until the search is finished or failed; return which.

    `progress()` runs about once a second meanwhile (the chief saves the best
    model so far, so little is left to do at the end); `finish(state)` runs
    while the server still answers (it writes the results), then the chief
    lingers briefly for workers still asking.

    Raises:
        RunError: trials remain but no worker has called for connect_timeout.
    """
    clock = ContactClock()
    server = start_server(oracle, port, identity, clock)
    try:
        state = wait_for_end(oracle, clock, connect_timeout, progress)
        finish(state)
        linger(oracle)
    finally:
        server.stop(grace=0.2).wait(2)
    return state


def wait_for_end(
    oracle: Any,
    clock: ContactClock,
    connect_timeout: float,
    progress: Callable[[], None],
) -> str:
    """Poll the oracle (cheap, local) and hand out trials of lost workers."""
    last_progress = time.monotonic()
    while True:
        state = oracle.search_state()
        if state != "running":
            return state
        oracle.requeue_lost_trials()
        silent = time.monotonic() - clock.last
        if silent > connect_timeout:
            raise RunError(
                f"no worker has called the chief for {silent:.0f} s "
                "(--connect-timeout) while trials remain: start workers with "
                "--role worker --oracle HOST:PORT, then rerun the chief to resume"
            )
        if time.monotonic() - last_progress > 1.0:
            progress()
            last_progress = time.monotonic()
        time.sleep(POLL_SECONDS)
        check_terminated()


def linger(oracle: Any) -> None:
    """Wait up to LINGER_SECONDS for workers still to hear "no trials left"."""
    deadline = time.monotonic() + LINGER_SECONDS
    while oracle.tuner_ids and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
