"""``salesforce-suite-emulator``: run the emulator from a shell."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from .config import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_DESK_OAUTH,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    EmulatorConfig,
)
from .tls import CA_FILE, DEFAULT_CERT_DIR

_EPILOG = f"""\
well-known development credentials:
  consumer key     {DEFAULT_CONSUMER_KEY}
  consumer secret  {DEFAULT_CONSUMER_SECRET}
  username         {DEFAULT_USERNAME}
  password         {DEFAULT_PASSWORD}
  security token   (empty)

Desk API v2 (/api/v2, the retired Desk.com's API):
  Basic auth       {DEFAULT_USERNAME} / {DEFAULT_PASSWORD}
  OAuth 1.0a       consumer {DEFAULT_DESK_OAUTH.consumer_key} / {DEFAULT_DESK_OAUTH.consumer_secret}, \
token {DEFAULT_DESK_OAUTH.access_token} / {DEFAULT_DESK_OAUTH.access_token_secret}
                   (more pairs: "desk_oauth_tokens" in the --config file)

TLS: a local CA certificate is generated once into the cert dir (default
{DEFAULT_CERT_DIR / CA_FILE}); pass it to clients as the CA bundle
(connection extra "ca_bundle", requests' verify=...).

control API (no auth): POST /__emulator__/reset, POST /__emulator__/sessions/expire,
POST|GET|DELETE /__emulator__/faults, GET|DELETE /__emulator__/stats,
POST /__emulator__/refresh-tokens {{"username": ..., "client_id": ...}},
GET|POST /__emulator__/desk {{"limit": ..., "window_seconds": ..., "throttle_next": ...}} (Desk 429s),
GET|POST /__emulator__/pardot {{"job_seconds": 0.3, "daily_quota": 10}}.

Pub/Sub API: --pubsub-port PORT serves eventbus.v1.PubSub over gRPC (TLS with the same CA,
plaintext with --no-tls); metadata accesstoken / instanceurl / tenantid (the org id of the
token's identity URL). Knobs: GET|POST /__emulator__/pubsub/config {{"keepalive_seconds": 270,
"delay_ms": 0}}, POST /__emulator__/pubsub/drop-streams, POST /__emulator__/pubsub/managed-subscriptions
{{"developer_name": ..., "topic": ...}}, GET /__emulator__/pubsub/managed-subscriptions/ID.

Change Data Capture publishes only for the entities selected for it, none by default (as in a
new org): select them with "cdc_entities": ["Account", "Invoice__c"] in the --config file, or at
runtime with POST /__emulator__/streaming/config {{"cdc_entities": [...]}}.

Snapshot a real org's schema (and sample records) into a schema file for --schema:
  salesforce-suite-emulator snapshot --conn-id ID [--objects A B ...] [--sample N] -o FILE
  (salesforce-suite-emulator snapshot --help for details)

Pardot (Account Engagement): /api/v5/objects/..., /api/v5/imports, /api/v5/exports and
/api/{{object}}/version/4/do/{{operation}} take the emulator's OAuth tokens plus the header
Pardot-Business-Unit-Id: 0Uv000000000001AAA (the default Business Unit ID; more via the
config file's "pardot_business_unit_ids"). Point a salesforce_pardot connection's
pardot_host at the emulator URL.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line parser."""
    parser = argparse.ArgumentParser(
        prog="salesforce-suite-emulator",
        description="A local Salesforce emulator: OAuth, REST sObjects, describe, SOQL, limits, fault injection.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8555, help="port to bind, 0 for any free port (default: 8555)")
    parser.add_argument("--db", metavar="PATH", help="SQLite file to keep data in (default: in memory)")
    parser.add_argument("--no-tls", action="store_true", help="serve plain HTTP instead of HTTPS")
    parser.add_argument("--cert-dir", metavar="DIR", help=f"where TLS files live (default: {DEFAULT_CERT_DIR})")
    parser.add_argument("--config", metavar="FILE", help="JSON config: users, connected apps, JWT certificates, limits")
    parser.add_argument("--pubsub-port", type=int, metavar="PORT",
                        help="also serve the Pub/Sub API (gRPC, same TLS) on PORT, 0 for any free port "
                             "(default: not served)")
    parser.add_argument("--schema", metavar="FILE", nargs="+", default=[],
                        help="schema file(s): custom objects and fields, snapshots, seed records")
    return parser


def build_snapshot_parser() -> argparse.ArgumentParser:
    """The ``snapshot`` subcommand's parser."""
    parser = argparse.ArgumentParser(
        prog="salesforce-suite-emulator snapshot",
        description="Write a schema file (for --schema and the pytest fixture) from a real org's describe "
                    "results, read through an Airflow salesforce_suite connection: the org's custom objects "
                    "and platform events plus the objects named, every field except secrets (encrypted "
                    "fields, names like Password or Token), and N sample records per object (ids kept).",
    )
    parser.add_argument("--conn-id", required=True, metavar="ID", help="Airflow connection id (salesforce_suite)")
    parser.add_argument("--objects", nargs="+", default=[], metavar="NAME",
                        help="standard (or other) objects to take besides the org's custom objects")
    parser.add_argument("--sample", type=int, default=0, metavar="N",
                        help="records to sample per object, written as seed records (default: 0)")
    parser.add_argument("--api-version", metavar="VERSION", help="overrides the connection's API version")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the schema file to write")
    return parser


def snapshot_main(argv: Sequence[str]) -> int:
    """``salesforce-suite-emulator snapshot ...``: write a schema file from an org.

    :param argv: the arguments after ``snapshot``.
    """
    from airflow.exceptions import AirflowNotFoundException

    from ..core.errors import SalesforceSuiteError
    from .snapshot import SnapshotError, snapshot_to_file

    parser = build_snapshot_parser()
    args = parser.parse_args(argv)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        result = snapshot_to_file(args.conn_id, args.output, objects=args.objects, sample=args.sample,
                                  api_version=args.api_version, progress=progress)
    except (SnapshotError, AirflowNotFoundException) as exc:  # what was asked cannot be done
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    except SalesforceSuiteError as exc:  # the org refused or was unreachable; the text is redacted
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    left_out = sum(len(v) for v in result.omitted.values())
    print(f"wrote {args.output}: {len(result.objects)} objects, {result.records} records"
          + (f", {left_out} fields or objects left out (see \"omitted\" in the file)" if left_out else ""),
          flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run until SIGINT or SIGTERM.

    :param argv: command line arguments (default: ``sys.argv[1:]``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["snapshot"]:
        return snapshot_main(argv[1:])
    from .metadata import SchemaError
    from .server import EmulatorServer  # keeps --help fast

    parser = build_parser()
    args = parser.parse_args(argv)
    config = EmulatorConfig.from_file(args.config) if args.config else None
    try:
        server = EmulatorServer(
            args.host, args.port, db_path=args.db, tls=not args.no_tls, cert_dir=args.cert_dir,
            config=config, schema_files=args.schema, pubsub_port=args.pubsub_port,
        )
    except ImportError as exc:  # --pubsub-port without the pubsub extra: the pip line, not a traceback
        parser.exit(2, f"{parser.prog}: error: --pubsub-port: {exc}\n")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        server.start()
    except SchemaError as exc:  # a user's file: say what is wrong with it, not a traceback
        parser.exit(2, f"{parser.prog}: error: --schema: {exc}\n")
    except OSError as exc:  # a port in use
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(f"Salesforce emulator listening on {server.url}", flush=True)
    if server.pubsub_endpoint:
        print(f"Pub/Sub API (gRPC{'' if server.tls else ', plaintext'}) listening on {server.pubsub_endpoint}",
              flush=True)
    if server.ca_bundle:
        print(f"CA certificate (ca_bundle): {server.ca_bundle}", flush=True)
    print(f"Login: {DEFAULT_USERNAME} / {DEFAULT_PASSWORD} (empty security token), "
          f"consumer key/secret: {DEFAULT_CONSUMER_KEY}/{DEFAULT_CONSUMER_SECRET}", flush=True)
    print(f"export AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT='{server.connection_json()}'", flush=True)
    try:
        while not stop.wait(0.5):
            if not server.running:  # the server thread died: exit non-zero
                return 1
    finally:
        server.stop()
        print("Salesforce emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
