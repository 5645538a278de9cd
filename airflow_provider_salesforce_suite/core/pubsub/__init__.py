"""Python stubs for the Pub/Sub API (``eventbus.v1``), generated from ``pubsub_api.proto`` on first use.

The hook and the emulator both call :func:`stubs`; nothing here imports gRPC until then, so
importing operators, sensors and triggers stays cheap. Generation runs ``grpc_tools.protoc`` once
per process into a temporary directory and loads the two generated modules under this package
(``...core.pubsub.pubsub_api_pb2`` and ``..._pb2_grpc``), so no generated file lives in the
repository and the stubs always match the bundled ``.proto``.
"""

from __future__ import annotations

import functools
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from airflow_provider_salesforce_suite.core.extras import require_extra

#: The bundled contract, relative to the directory that holds the ``airflow_provider_salesforce_suite`` package.
PROTO_FILE = "airflow_provider_salesforce_suite/core/pubsub/pubsub_api.proto"
#: The gRPC service's full name.
SERVICE = "eventbus.v1.PubSub"

_lock = threading.Lock()


class PubSubStubs(NamedTuple):
    """The generated modules.

    :param pb2: messages and enums (``FetchRequest``, ``ReplayPreset``, ...).
    :param pb2_grpc: ``PubSubStub`` for clients, ``PubSubServicer`` and
        ``add_PubSubServicer_to_server`` for servers.
    """

    pb2: ModuleType
    pb2_grpc: ModuleType


def _exec_module(name: str, source_file: Path) -> ModuleType:
    module = ModuleType(name)
    module.__file__ = str(source_file)
    sys.modules[name] = module  # the _grpc module imports the _pb2 one by this name
    exec(compile(source_file.read_text(), str(source_file), "exec"), module.__dict__)  # noqa: S102 - our own generated code
    return module


@functools.cache
def _generate() -> PubSubStubs:
    require_extra("pubsub", "The Pub/Sub API")
    import importlib.resources

    from grpc_tools import protoc

    root = Path(__file__).resolve().parents[3]
    include = str(importlib.resources.files("grpc_tools") / "_proto")
    with tempfile.TemporaryDirectory(prefix="sf-pubsub-stubs-") as out:
        code = protoc.main(["protoc", f"-I{root}", f"-I{include}", f"--python_out={out}",
                            f"--grpc_python_out={out}", PROTO_FILE])
        if code != 0:
            raise RuntimeError(f"protoc could not compile {PROTO_FILE} (exit {code})")
        generated = Path(out) / Path(PROTO_FILE).parent
        package = __name__
        pb2 = _exec_module(f"{package}.pubsub_api_pb2", generated / "pubsub_api_pb2.py")
        pb2_grpc = _exec_module(f"{package}.pubsub_api_pb2_grpc", generated / "pubsub_api_pb2_grpc.py")
    return PubSubStubs(pb2, pb2_grpc)


def stubs() -> PubSubStubs:
    """The generated ``eventbus.v1`` modules (generated on the first call, then cached)."""
    with _lock:
        return _generate()
