"""The worker's side of the oracle: retries, backoff, heartbeats, a clean end.

Keras Tuner 1.4.8's OracleClient sends every request with `wait_for_ready`
and a 60-minute deadline: a worker whose chief is gone waits an hour, and a
Hyperband worker told IDLE asks again at once, hundreds of times a second.
`RetryingOracleClient` keeps upstream's methods and replaces the stub with one
that retries unreachable-chief errors with backoff up to --connect-timeout,
looks at the shared search record meanwhile (the chief may simply be done),
and sleeps between IDLE answers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from keras_tuner.src import protos
from keras_tuner.src.distribute.oracle_client import OracleClient
from keras_tuner.src.engine import trial as trial_module

from kerasjobs.errors import RunError
from kerasjobs.tune_runtime import check_terminated

logger = logging.getLogger(__name__)

CONTROL_SERVICE = "kerasjobs.tune.Control"
CONTROL_METHODS = ("Status", "Heartbeat", "Release", "Report")
# One attempt's deadline; requests are small and the chief answers at once.
ATTEMPT_SECONDS = 5.0
IDLE_BACKOFF_SECONDS = (0.2, 2.0)
# gRPC's own reconnect backoff grows to 120 s by default, which would keep a
# worker away from a restarted chief for minutes.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]
# A chief that is down, slow, or shutting down (its server cancels the calls
# in flight as it stops): ask again, and read search.json in between.
_RETRIED = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def decode(data: bytes) -> dict[str, Any]:
    return json.loads(data or b"{}")


class SearchEnded(BaseException):
    """The search is over for this worker: finished, failed or out of reach.

    A BaseException, so that Keras Tuner's `except Exception` around a trial
    does not record it as the trial's failure.
    """

    def __init__(self, state: str, message: str = "") -> None:
        super().__init__(message or state)
        self.state = state
        self.message = message


class Retrier:
    """Calls a gRPC method until it answers, the search ends or time runs out."""

    def __init__(
        self,
        address: str,
        connect_timeout: float,
        recorded_state: Callable[[], tuple[str, str]],
    ) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self.recorded_state = recorded_state

    def call(self, method: Callable, request: Any) -> Any:
        first_failure = None
        delay = 0.2
        while True:
            try:
                # Fail fast when the chief is down, so that the search record
                # is read and the backoff is ours, not gRPC's.
                return method(request, wait_for_ready=False, timeout=ATTEMPT_SECONDS)
            except grpc.RpcError as error:
                if error.code() not in _RETRIED:
                    raise RunError(
                        f"the chief at {self.address} refused a request "
                        f"({error.code().name}: {error.details()}): check that "
                        "chief and workers run the same kerasjobs version"
                    ) from None
            first_failure = first_failure or time.monotonic()
            self.check_recorded_state()
            waited = time.monotonic() - first_failure
            if waited > self.connect_timeout:
                raise SearchEnded(
                    "unreachable",
                    f"the chief at {self.address} did not answer for {waited:.0f} s "
                    "(--connect-timeout): check that it runs and that this address "
                    "reaches it",
                )
            logger.debug(
                "chief at %s unreachable; retrying in %.1f s", self.address, delay
            )
            time.sleep(delay)
            check_terminated()
            delay = min(delay * 2, 2.0)

    def check_recorded_state(self) -> None:
        """End quietly if the chief recorded the search as over before going."""
        state, message = self.recorded_state()
        if state in ("finished", "failed"):
            raise SearchEnded(state, message)


class RetryingStub:
    """Stands in for upstream's OracleStub: the same methods, retried."""

    def __init__(self, stub: Any, retrier: Retrier) -> None:
        self._stub = stub
        self._retrier = retrier

    def __getattr__(self, name: str) -> Callable:
        method = getattr(self._stub, name)

        # Upstream passes wait_for_ready and its 60-minute timeout; ours win.
        def call(request: Any, **ignored: Any) -> Any:
            return self._retrier.call(method, request)

        return call


class ControlClient:
    """The chief's extra service: status, heartbeats, hand-backs, errors."""

    def __init__(self, channel: grpc.Channel, retrier: Retrier) -> None:
        self._methods = {
            name: channel.unary_unary(
                f"/{CONTROL_SERVICE}/{name}",
                request_serializer=encode,
                response_deserializer=decode,
            )
            for name in CONTROL_METHODS
        }
        self._retrier = retrier

    def call(self, name: str, message: dict[str, Any]) -> dict[str, Any]:
        """Retried like any oracle request."""
        return self._retrier.call(self._methods[name], message)

    def try_call(self, name: str, message: dict[str, Any], timeout: float) -> bool:
        """One attempt, for heartbeats and hand-backs; False if it failed."""
        try:
            self._methods[name](message, timeout=timeout)
        except grpc.RpcError as error:
            logger.debug("%s to the chief failed: %s", name, error.code())
            return False
        return True


class RetryingOracleClient(OracleClient):
    """Upstream's OracleClient with a retrying stub and IDLE backoff."""

    def __init__(
        self,
        oracle: Any,
        address: str,
        connect_timeout: float,
        recorded_state: Callable[[], tuple[str, str]],
    ) -> None:
        super().__init__(oracle)
        self.retrier = Retrier(address, connect_timeout, recorded_state)
        self.channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.stub = RetryingStub(
            protos.get_service_grpc().OracleStub(self.channel), self.retrier
        )
        self.control = ControlClient(self.channel, self.retrier)

    def status(self) -> dict[str, Any]:
        return self.control.call("Status", {"tuner_id": self.tuner_id})

    def create_trial(self, tuner_id: str):
        delay, longest = IDLE_BACKOFF_SECONDS
        while True:
            trial = super().create_trial(tuner_id)
            if trial.status == trial_module.TrialStatus.STOPPED:
                # No new trial, but a running one may yet come back to the
                # queue (its worker lost): leave only once the search is over.
                status = self.status()
                if status["state"] in ("finished", "failed"):
                    raise SearchEnded(status["state"], status.get("message") or "")
            elif trial.status != trial_module.TrialStatus.IDLE:
                return trial
            # Hyperband waits for a bracket to finish; upstream asks again at
            # once, flooding the chief. Back off instead.
            time.sleep(delay)
            check_terminated()
            delay = min(delay * 2, longest)

    def close(self) -> None:
        self.channel.close()


class Heartbeat:
    """Tells the chief, every `period` seconds, that this worker's trial runs."""

    def __init__(self, client: RetryingOracleClient, period: float) -> None:
        self.client = client
        self.period = period
        self._trial_id: str | None = None
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def start(self, trial_id: str) -> None:
        self._trial_id = trial_id
        self._wake.set()

    def stop(self) -> None:
        self._trial_id = None

    def beat(self) -> None:
        """One heartbeat now (at each epoch's end)."""
        self._wake.set()

    @property
    def trial_id(self) -> str | None:
        return self._trial_id

    def _run(self) -> None:
        while True:
            self._wake.wait(self.period)
            self._wake.clear()
            trial_id = self._trial_id
            if trial_id is not None:
                self.client.control.try_call(
                    "Heartbeat",
                    {"tuner_id": self.client.tuner_id, "trial_id": trial_id},
                    timeout=min(self.period, ATTEMPT_SECONDS),
                )
