"""``EmulatorServer``: the emulator in a background thread, for tests, the CLI and demos."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from aiohttp import web

from ..core.extras import require_extra
from .app import build_app
from .config import DEFAULT_CONSUMER_KEY, DEFAULT_CONSUMER_SECRET, DEFAULT_PASSWORD, DEFAULT_USERNAME, EmulatorConfig
from .state import EmulatorState
from .tls import TlsFiles, ensure_certificate

T = TypeVar("T")

_START_TIMEOUT = 30.0


class EmulatorServer:
    """A running emulator: an aiohttp server on its own event loop in a daemon thread.

    The store is created on the server thread and every later store access from outside
    (:meth:`call`, :meth:`reset`) is marshalled onto that thread, so a SQLite connection is only
    ever used by the thread that made it.

    :param host: address to bind (loopback by default; the emulator has no real security).
    :param port: port to bind (0: a free port, see :attr:`url`).
    :param db_path: SQLite file for the store (``None``: in-memory, gone on stop).
    :param tls: serve HTTPS with the local CA's certificate (see :attr:`ca_bundle`).
    :param cert_dir: where the TLS files live (default ``~/.cache/salesforce-suite-emulator/``).
    :param config: an :class:`EmulatorConfig` or the path of a JSON config file.
    :param schema_files: custom object schema files loaded into the store's metadata.
    :param pubsub_port: also serve the Pub/Sub API (gRPC, same TLS) on this port (0: a free port,
        see :attr:`pubsub_endpoint`; ``None``: not served).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        db_path: str | os.PathLike[str] | None = None,
        tls: bool = True,
        cert_dir: str | os.PathLike[str] | None = None,
        config: EmulatorConfig | str | os.PathLike[str] | None = None,
        schema_files: Iterable[str | os.PathLike[str]] = (),
        pubsub_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.db_path = None if db_path is None else str(db_path)
        self.tls = tls
        self.cert_dir = cert_dir
        self.config = config if isinstance(config, EmulatorConfig) or config is None else EmulatorConfig.from_file(config)
        self.schema_files = tuple(str(f) for f in schema_files)
        self.tls_files: TlsFiles | None = None
        self.state: EmulatorState | None = None
        self.url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        if pubsub_port is not None:
            require_extra("pubsub", "The emulator's Pub/Sub API")
        self.pubsub_port = pubsub_port
        self._grpc_server: Any = None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def ca_bundle(self) -> str | None:
        """The CA certificate clients verify against (``None`` without TLS)."""
        return str(self.tls_files.ca_bundle) if self.tls_files else None

    @property
    def pubsub_endpoint(self) -> str | None:
        """``host:port`` of the Pub/Sub API (``None`` when it is not served), e.g. ``127.0.0.1:50051``."""
        if self._grpc_server is None or self.pubsub_port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.pubsub_port}"

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> EmulatorServer:
        """Start serving; returns once the port is bound (raises if startup failed)."""
        if self.running:
            return self
        if self.tls:
            self.tls_files = ensure_certificate(self.cert_dir)
        started: Future[None] = Future()
        self._thread = threading.Thread(target=self._serve, args=(started,), name="salesforce-emulator", daemon=True)
        self._thread.start()
        started.result(timeout=_START_TIMEOUT)
        return self

    def _serve(self, started: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # report to start() instead of dying silently
            started.set_exception(exc)
            loop.run_until_complete(self._shutdown())  # e.g. the HTTPS site bound but the gRPC port was busy
            loop.close()
            return
        started.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.close()

    async def _startup(self) -> None:
        from .store import Store  # the data layer; imported late so config errors surface first

        store = Store(self.db_path, schema_files=self.schema_files)
        self.state = EmulatorState(store, self.config)
        self._runner = web.AppRunner(build_app(self.state), access_log=None, handle_signals=False)
        await self._runner.setup()
        ssl_context = self.tls_files.server_context() if self.tls_files else None
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ssl_context)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{'https' if ssl_context else 'http'}://{host}:{self.port}"
        if self.pubsub_port is not None:
            from .pubsub import grpc_server
            from .pubsub.service import PUBSUB_KEY

            service = self._runner.app[PUBSUB_KEY]
            self._grpc_server = await grpc_server.start(service, self.host, self.pubsub_port, self.tls_files)
            self.pubsub_port = int(service.endpoint.rsplit(":", 1)[1])  # type: ignore[union-attr]

    async def _shutdown(self) -> None:
        if self._grpc_server is not None:
            from .pubsub import grpc_server

            await grpc_server.stop(self._grpc_server)
            self._grpc_server = None
        if self._runner is not None:
            await self._runner.cleanup()
        if self.state is not None:
            self.state.store.close()

    def stop(self) -> None:
        """Stop serving and close the store (idempotent)."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_START_TIMEOUT)
        self._thread = None
        self._loop = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- in-process control -------------------------------------------------------------------

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server thread (where the store lives) and return its result.

        :param fn: a callable, typically touching :attr:`state`.
        """
        if self._loop is None:
            raise RuntimeError("the emulator is not running")

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=_START_TIMEOUT)

    def reset(self, **options: bool) -> None:
        """Reset data, faults, stats and API counters (see :meth:`EmulatorState.reset`).

        :param options: ``data``, ``faults``, ``stats``, ``sessions``, ``api_usage`` switches.
        """
        self.call(lambda: self.state.reset(**options))  # type: ignore[union-attr]

    # -- Airflow connection -------------------------------------------------------------------

    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"consumer_key": DEFAULT_CONSUMER_KEY, "consumer_secret": DEFAULT_CONSUMER_SECRET}
        if self.ca_bundle:
            extra["ca_bundle"] = self.ca_bundle
        if self.pubsub_endpoint:
            extra["pubsub_endpoint"] = self.pubsub_endpoint
        return extra

    def connection_json(self, conn_type: str = "salesforce_suite") -> str:
        """An Airflow connection (JSON form) for ``AIRFLOW_CONN_...`` pointing at this emulator,
        with the well-known credentials.

        :param conn_type: the connection type.
        """
        self._require_url()
        return json.dumps(
            {
                "conn_type": conn_type,
                "host": self.url,
                "login": DEFAULT_USERNAME,
                "password": DEFAULT_PASSWORD,
                "extra": self._extra(),
            }
        )

    def connection_uri(self, conn_type: str = "salesforce_suite") -> str:
        """The same connection in Airflow's URI form (the host URL percent-encoded, as Airflow
        does for hosts with a scheme).

        :param conn_type: the connection type.
        """
        self._require_url()
        return (
            f"{conn_type.replace('_', '-')}://{quote(DEFAULT_USERNAME, safe='')}:{quote(DEFAULT_PASSWORD, safe='')}"
            f"@{quote(self.url or '', safe='')}/?{urlencode(self._extra())}"
        )

    def _require_url(self) -> None:
        if self.url is None:
            raise RuntimeError("start() the emulator first")


def default_cert_path() -> Path:
    """Where the CA certificate is kept by default."""
    from .tls import CA_FILE, DEFAULT_CERT_DIR

    return DEFAULT_CERT_DIR.expanduser() / CA_FILE
