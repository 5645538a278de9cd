"""The zeep client: the WSDL parsed once per process, XML parsing locked down, our session as transport.

zeep and lxml are imported here, and this module is imported only when a SOAP call is made.
"""

from __future__ import annotations

import threading
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

import zeep
from zeep.transports import Transport

if TYPE_CHECKING:
    import requests

PARTNER_NS = "urn:partner.soap.sforce.com"
SOBJECT_NS = "urn:sobject.partner.soap.sforce.com"
FAULT_NS = "urn:fault.partner.soap.sforce.com"
BINDING = f"{{{PARTNER_NS}}}SoapBinding"


def partner_wsdl_path() -> str:
    """Path of the packaged partner WSDL."""
    return str(resources.files("airflow_provider_salesforce_suite") / "wsdl" / "partner.wsdl")


def safe_settings() -> zeep.Settings:
    """No DTDs, no entity expansion, no external entities, no huge trees: Salesforce sends none."""
    return zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True,
                         xml_huge_tree=False)


# WSDL path -> parsed zeep Document; parsing costs ~0.2 s, a Client over a parsed Document ~nothing.
_DOCUMENTS: dict[str, Any] = {}
_LOCK = threading.Lock()
#: Seconds spent parsing each WSDL (for the benchmark and the logs).
PARSE_SECONDS: dict[str, float] = {}


def _document(path: str) -> Any:
    document = _DOCUMENTS.get(path)
    if document is None:
        with _LOCK:
            document = _DOCUMENTS.get(path)
            if document is None:
                start = time.perf_counter()
                document = zeep.wsdl.Document(path, Transport(), settings=safe_settings())
                _relax_sobject_content(document)
                PARSE_SECONDS[path] = time.perf_counter() - start
                _DOCUMENTS[path] = document
    return document


def _relax_sobject_content(document: Any) -> None:
    """Hand sObject field elements over raw.

    The WSDL says ``processContents="lax"``; zeep then parses an ``xsi:type``'d field (a parent
    relationship, a child QueryResult) into a value that has lost its element name. Reading every
    field element ourselves keeps the names (``records.py`` does the typing).
    """
    from zeep.xsd import Any as AnyElement

    def relax(particles: Any) -> None:
        for particle in particles:
            if isinstance(particle, AnyElement):
                particle.process_contents = "skip"
            elif isinstance(particle, list):  # sequence/choice indicators are lists of particles
                relax(particle)

    relax(element for _name, element in document.types.get_type(f"{{{SOBJECT_NS}}}sObject").elements_nested)


def clear_client_cache() -> None:
    """Forget the parsed WSDLs (the next client parses again)."""
    with _LOCK:
        _DOCUMENTS.clear()
        PARSE_SECONDS.clear()


class _SessionTransport(Transport):
    """zeep's transport over our ``SalesforceSession`` (TLS, proxies, timeouts, retries, usage).

    zeep's constructor mounts a ``file://`` adapter and its own User-Agent on the session it is given;
    neither belongs on a session that carries a Salesforce token, so both are undone.
    """

    def __init__(self, session: requests.Session) -> None:
        #: Whether the current call may be replayed after an ambiguous failure (reads may).
        self.idempotent = False
        #: HTTP status of the last response (for errors raised while parsing it).
        self.last_status: int | None = None
        agent = session.headers.get("User-Agent")
        had_file = "file://" in session.adapters
        super().__init__(session=session)
        if not had_file:
            session.adapters.pop("file://", None)
        if agent is not None:
            session.headers["User-Agent"] = agent

    def post(self, address: str, message: Any, headers: dict[str, str]) -> Any:
        # Not zeep's own post: it logs the envelope, which carries the session id.
        self.last_status = None
        response = self.session.post(address, data=message, headers=headers, idempotent=self.idempotent)
        self.last_status = response.status_code
        return response


def build_client(session: requests.Session, address: str, wsdl_path: str | None = None) -> tuple[Any, Any]:
    """A zeep ``Client`` sharing the cached parsed WSDL, and its service bound to ``address``.

    :param session: the hook's ``SalesforceSession``.
    :param address: ``{instance_url}/services/Soap/u/{api_version}``.
    :param wsdl_path: another WSDL with the same binding (default: the packaged partner WSDL).
    """
    document = _document(wsdl_path or partner_wsdl_path())
    client = zeep.Client(document, transport=_SessionTransport(session), settings=safe_settings())
    return client, client.create_service(BINDING, address)
