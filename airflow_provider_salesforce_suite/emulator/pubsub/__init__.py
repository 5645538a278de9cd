"""The Pub/Sub API (gRPC service ``eventbus.v1.PubSub``) beside the emulator's HTTPS server.

It reads and writes the Streaming API's event log (:mod:`..streaming.hub`), so a change seen on a
CometD ``/data/...`` channel and on the Pub/Sub topic of the same name carries the same integer
replay id (Pub/Sub's replay id bytes are its 8-byte big-endian encoding), and a platform event
published over either API reaches subscribers of both.

Modules: :mod:`.wire` (replay ids, error codes), :mod:`.auth` (call metadata -> session),
:mod:`.schemas` (Avro schemas and values), :mod:`.bitmaps` (change event field bitmaps),
:mod:`.topics` (topic catalog and event encoding), :mod:`.service` (state shared by the gRPC
servicer and the knobs), :mod:`.managed` (managed subscriptions), :mod:`.delivery`
(flow-controlled event delivery), :mod:`.publishing`, :mod:`.servicer` (the RPCs),
:mod:`.grpc_server` (lifecycle), :mod:`.admin` (``/__emulator__/pubsub``), :mod:`.tooling` (the
Tooling API's ManagedEventSubscription), :mod:`.routes` (wiring into the aiohttp app).
Nothing here imports gRPC or fastavro until the gRPC server starts or a knob needs them.
"""

from __future__ import annotations
