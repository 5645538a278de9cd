"""The gRPC server's lifecycle: started on the emulator's event loop, beside the aiohttp site.

Sharing the loop means the servicer, the hub and the store listener run on one thread: a publish
logs its events synchronously and Pub/Sub streams are woken by the hub without locks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..tls import TlsFiles
    from .service import PubSubService


async def start(service: PubSubService, host: str, port: int, tls: TlsFiles | None) -> Any:
    """Start serving ``eventbus.v1.PubSub`` (call on the emulator's running loop).

    :param service: the Pub/Sub state.
    :param host: address to bind.
    :param port: port to bind (0: a free port).
    :param tls: the emulator's TLS files (``None``: plaintext).
    :returns: the started ``grpc.aio.Server``; ``service.endpoint`` is ``host:port``.
    :raises OSError: the port could not be bound.
    """
    import grpc

    from .servicer import PubSubServicer, pb2_grpc

    server = grpc.aio.server()
    pb2_grpc.add_PubSubServicer_to_server(PubSubServicer(service), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if tls is not None:
            credentials = grpc.ssl_server_credentials([(tls.key_path.read_bytes(), tls.cert_path.read_bytes())])
            bound = server.add_secure_port(address, credentials)
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError:  # grpc's "Failed to bind": say which port, without its log hints
        bound = 0
    if not bound:
        raise OSError(f"the Pub/Sub API could not bind {address} (address in use or not available)")
    await server.start()
    service.endpoint = f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"
    return server


async def stop(server: Any) -> None:
    """Stop at once: open streams end (clients see ``UNAVAILABLE`` / ``CANCELLED``).

    :param server: what :func:`start` returned.
    """
    await server.stop(grace=None)
