"""Desk API v2: Basic or OAuth 1.0a auth, timeouts, TLS, the shared retry policy, HAL paging and ETags.

Salesforce retired the hosted Desk.com service in March 2020; this hook serves Desk-compatible
API v2 endpoints (``{site}/api/v2/...``) such as archives and the emulator. Desk's error bodies
(``{"message", "errors"}``) are understood by :func:`parse_desk_error`, registered with
:func:`~airflow_provider_salesforce_suite.core.errors.register_body_parser`.
"""

from __future__ import annotations

import json as jsonlib
from collections import OrderedDict
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlsplit

import requests
from airflow.sdk import BaseHook

from airflow_provider_salesforce_suite.core.config import DESK_CONN_TYPE, DeskConnectionConfig
from airflow_provider_salesforce_suite.core.errors import (
    ErrorDetail,
    SalesforceAuthError,
    SalesforceOutcomeUnknownError,
    error_from_response,
    outcome_unknown,
    raise_for_status,
    register_body_parser,
)
from airflow_provider_salesforce_suite.core.retry import RetryPolicy
from airflow_provider_salesforce_suite.core.transport import send_with_retries

if TYPE_CHECKING:
    from requests.auth import AuthBase

API_PREFIX = "/api/v2/"
#: Desk's largest page.
MAX_PER_PAGE = 100
#: Pages remembered for ``If-None-Match`` (bounded, so long exports stay in constant memory).
ETAG_CACHE_PAGES = 32
#: Collection -> what it supports: ``c``reate, ``u``pdate, ``s``earch.
COLLECTIONS: dict[str, str] = {
    "articles": "cus", "cases": "cus", "companies": "cu", "customers": "cus", "topics": "cu", "labels": "cu",
    "groups": "", "users": "", "filters": "",
}
#: Sub-collections per parent collection (``cases/1/notes``).
SUB_COLLECTIONS: dict[str, tuple[str, ...]] = {
    "cases": ("notes", "replies", "attachments"), "articles": ("attachments",),
    "companies": ("cases", "customers"), "customers": ("cases",), "filters": ("cases",), "topics": ("articles",),
}


def parse_desk_error(body: bytes, content_type: str) -> list[ErrorDetail] | None:
    """Desk errors: ``{"message": "Validation Failed", "errors": {"subject": ["blank"]}}``.

    The fields named in ``errors`` become :attr:`ErrorDetail.fields`, and their reasons join the message.

    :param body: response body.
    :param content_type: response content type.
    """
    try:
        data = jsonlib.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or "errorCode" in data or not isinstance(data.get("errors"), dict):
        return None
    reasons = []
    for name, why in data["errors"].items():
        why = ", ".join(str(w) for w in why) if isinstance(why, list) else str(why)
        reasons.append(f"{name}: {why}")
    message = str(data.get("message") or "Desk error")
    if reasons:
        message += f" ({'; '.join(reasons)})"
    return [ErrorDetail(error_code=None, message=message, fields=[str(k) for k in data["errors"]])]


register_body_parser(parse_desk_error)


class DeskAuthError(SalesforceAuthError):
    """Desk refused the connection's credentials (HTTP 401 ``{"message": "Unauthorized"}``).

    Desk has no session to renew: Basic auth and OAuth 1.0a sign every request, so a 401 means the
    credentials themselves are wrong (or the agent is disabled); sending again cannot help.
    """


def desk_auth_error(response: requests.Response, config: DeskConnectionConfig) -> DeskAuthError:
    """The error for Desk's 401 to ``response``'s request: Desk's message and which credentials to check.

    :param response: the 401 response.
    :param config: the connection's config (names the site and the login; never a secret).
    """
    request = response.request
    reply = error_from_response(response.status_code, response.headers, response.content,
                                method=request.method if request is not None else None, path=response.url)
    if config.auth_type == "oauth1":
        check = "the OAuth 1.0a consumer key/secret and access token/secret"
    else:
        check = f"the login {config.email!r} and its password"
    return DeskAuthError(
        f"Desk at {config.site_url} rejected the credentials of connection {config.conn_id!r} "
        f"(HTTP 401 {reply.method or ''} {reply.path or ''}: {reply.message}): check {check}",
        error="Unauthorized", error_description=reply.message, status=response.status_code,
    )


class DeskHook(BaseHook):
    """Talks to one Desk site's API v2. Constructing it does no I/O.

    :param desk_conn_id: Airflow connection id of type ``salesforce_desk``.
    """

    conn_name_attr = "desk_conn_id"
    default_conn_name = "salesforce_desk_default"
    conn_type = DESK_CONN_TYPE
    hook_name = "Salesforce Desk"

    def __init__(self, desk_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.desk_conn_id = desk_conn_id
        self._etags: OrderedDict[str, tuple[str, Any]] = OrderedDict()

    @cached_property
    def config(self) -> DeskConnectionConfig:
        """The validated connection config (reads the connection on first use)."""
        return DeskConnectionConfig.from_connection(self.get_connection(self.desk_conn_id))

    @cached_property
    def auth(self) -> AuthBase:
        """Basic auth (email + password) or an OAuth 1.0a signer, per the connection's ``auth_type``."""
        c = self.config
        if c.auth_type == "oauth1":
            from requests_oauthlib import OAuth1  # only OAuth 1.0a connections need it

            return OAuth1(c.consumer_key, client_secret=c.consumer_secret,
                          resource_owner_key=c.access_token, resource_owner_secret=c.access_token_secret)
        return requests.auth.HTTPBasicAuth(c.email, c.password)

    @cached_property
    def session(self) -> requests.Session:
        """A plain requests session with the connection's proxies; credentials are added per request."""
        session = requests.Session()
        session.headers["Accept"] = "application/json"
        if self.config.proxies:
            session.proxies.update(self.config.proxies)
        return session

    def url(self, path_or_url: str) -> str:
        """``cases`` or ``/api/v2/cases`` -> ``{site}/api/v2/cases``; absolute URLs pass through."""
        if "://" in path_or_url:
            return path_or_url
        path = path_or_url if path_or_url.startswith("/api/") else API_PREFIX + path_or_url.lstrip("/")
        return self.config.site_url + path

    def _is_site(self, url: str) -> bool:
        return urlsplit(url).netloc.lower() == urlsplit(self.config.site_url).netloc.lower()

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send a Desk API request with retries and raise a ``SalesforceApiError`` on non-2xx.

        A 429 waits for Desk's rate-limit reset (``X-Rate-Limit-Reset``) and retries, up to
        ``max_retries`` times; a reset beyond the ``rate_limit_max_wait`` extra (90 s by default, which
        covers Desk's 60-second window) fails at once with a ``SalesforceRequestLimitError`` saying so.
        Credentials are only sent to the configured site, never to a foreign absolute URL.

        :param method: HTTP method.
        :param path_or_url: ``cases``, ``/api/v2/cases/1`` or an absolute URL.
        :param params: query parameters.
        :param json: JSON body.
        :param data: raw body (must be replayable: bytes, str or dict).
        :param headers: extra headers.
        :param stream: do not read the body of a successful response up front.
        :param idempotent: whether the call may be replayed after a dropped connection (default: by method).
        """
        try:
            response = self._send(method, path_or_url, params=params, json=json, data=data, headers=headers,
                                  stream=stream, idempotent=idempotent)
        except SalesforceOutcomeUnknownError as exc:  # a create is never replayed blindly: Desk has no key
            raise outcome_unknown(exc, f"Desk {method.upper()} {exc.path or path_or_url}",
                                  "Desk may have created the entry (case, reply, note ...)") from None
        return self._checked(response)

    def _checked(self, response: requests.Response) -> requests.Response:
        """``raise_for_status``, with Desk's 401 as :class:`DeskAuthError` (not an expired session)."""
        if response.status_code == 401:
            raise desk_auth_error(response, self.config)
        return raise_for_status(response)

    def _send(self, method: str, path_or_url: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
              data: Any = None, headers: Mapping[str, str] | None = None, stream: bool = False,
              idempotent: bool | None = None) -> requests.Response:
        """:meth:`request` without the status check (a 304 is not an error to :meth:`get_json`)."""
        c = self.config
        url = self.url(path_or_url)
        call = {
            "params": params, "json": json, "data": data, "headers": headers, "stream": stream,
            "auth": self.auth if self._is_site(url) else None,
            "timeout": (c.connect_timeout, c.timeout),
            # Explicit per request: requests lets REQUESTS_CA_BUNDLE override session.verify otherwise.
            "verify": c.requests_verify,
        }
        return send_with_retries(
            lambda: self.session.request(method, url, **call), method, url, RetryPolicy.from_config(c), idempotent
        )

    def test_connection(self) -> tuple[bool, str]:
        """Read the authenticated user: the Airflow UI's "Test" button."""
        try:
            me = self.request("GET", "users/me").json()
        except Exception as exc:  # the UI wants a message, not a traceback; our errors carry no secrets
            return False, f"{type(exc).__name__}: {exc}"
        who = (me.get("email") or me.get("name")) if isinstance(me, dict) else None
        return True, f"Connected to Desk at {self.config.site_url} as {who or 'the configured user'}"

    # -- reading: ETags and HAL paging ---------------------------------------------------------------
    def get_json(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a resource; when Desk sent an ``ETag`` for the same URL before, ask with
        ``If-None-Match`` and reuse the remembered body on a 304.

        :param path_or_url: ``cases``, ``/api/v2/cases?page=2`` or an absolute URL.
        :param params: query parameters.
        """
        key = self.url(path_or_url) + "?" + "&".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
        cached = self._etags.get(key)
        response = self._send("GET", path_or_url, params=params,
                              headers={"If-None-Match": cached[0]} if cached else None)
        if response.status_code == 304 and cached:
            self._etags.move_to_end(key)
            return cached[1]
        body = self._checked(response).json()
        etag = response.headers.get("ETag")
        if etag:
            self._etags[key] = (etag, body)
            self._etags.move_to_end(key)
            while len(self._etags) > ETAG_CACHE_PAGES:
                self._etags.popitem(last=False)
        return body

    def iter_pages(self, path: str, params: Mapping[str, Any] | None = None, *,
                   per_page: int = MAX_PER_PAGE) -> Iterator[list[dict[str, Any]]]:
        """Lazily yield each page's ``_embedded.entries``, following ``_links.next`` until there is none.

        :param path: a list or search path (``cases``, ``cases/search``, ``companies/1/cases``).
        :param params: filters (the first request only; ``next`` links carry them on).
        :param per_page: entries per page (1..100).
        """
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be between 1 and {MAX_PER_PAGE}")
        page: Any = self.get_json(path, {**(params or {}), "per_page": per_page})
        while True:
            yield list((page.get("_embedded") or {}).get("entries") or [])
            next_link = (page.get("_links") or {}).get("next")
            if not next_link or not next_link.get("href"):
                return
            page = self.get_json(next_link["href"])

    def iter_entries(self, path: str, params: Mapping[str, Any] | None = None, *,
                     per_page: int = MAX_PER_PAGE) -> Iterator[dict[str, Any]]:
        """Lazily yield every entry of a list or search, page by page (see :meth:`iter_pages`).

        :param path: a list or search path.
        :param params: filters.
        :param per_page: entries per page (1..100).
        """
        for page in self.iter_pages(path, params, per_page=per_page):
            yield from page

    # -- generic resource calls --------------------------------------------------------------------------
    @staticmethod
    def _collection(collection: str, capability: str = "") -> str:
        supported = COLLECTIONS.get(collection)
        if supported is None:
            raise ValueError(f"unknown Desk collection {collection!r}; known: {', '.join(COLLECTIONS)}")
        if capability and capability not in supported:
            verb = {"c": "create", "u": "update", "s": "search"}[capability]
            raise ValueError(f"Desk {collection} do not support {verb}")
        return collection

    def collection_path(self, collection: str, parent_id: int | str | None = None, sub: str | None = None,
                        *, search: bool = False) -> str:
        """The path of a list (``cases``), a search (``cases/search``) or a sub-collection (``cases/1/notes``).

        :param collection: the collection.
        :param parent_id: with ``sub``, the parent entry's id.
        :param sub: a sub-collection (``notes``, ``replies``, ``attachments``, ``cases`` ...).
        :param search: the collection's search endpoint.
        """
        self._collection(collection, "s" if search else "")
        if sub is None:
            return f"{collection}/search" if search else collection
        if sub not in SUB_COLLECTIONS.get(collection, ()):
            raise ValueError(f"Desk {collection} have no {sub!r}; they have: "
                             f"{', '.join(SUB_COLLECTIONS.get(collection, ())) or 'none'}")
        return f"{collection}/{int(parent_id)}/{sub}"  # type: ignore[arg-type]

    def list(self, collection: str, params: Mapping[str, Any] | None = None, *,
             per_page: int = MAX_PER_PAGE) -> Iterator[dict[str, Any]]:
        """Lazily iterate over every entry of a collection (``articles``, ``cases``, ``companies``,
        ``customers``, ``groups``, ``topics``, ``users``, ``labels``, ``filters``).

        :param collection: the collection.
        :param params: extra query parameters (e.g. ``sort_field``).
        :param per_page: entries per page (1..100).
        """
        return self.iter_entries(self.collection_path(collection), params, per_page=per_page)

    def search(self, collection: str, filters: Mapping[str, Any], *,
               per_page: int = MAX_PER_PAGE) -> Iterator[dict[str, Any]]:
        """Lazily iterate over a search of ``cases``, ``customers`` or ``articles``.

        Case filters include ``q``, ``subject``, ``status`` (comma list), ``priority``, ``labels``,
        ``channels``, ``email``, ``company``, ``since_created_at`` / ``max_created_at`` /
        ``since_updated_at`` / ``max_updated_at`` (epoch seconds), ``since_id``, ``sort_field``,
        ``sort_direction``; customers: ``email``, ``first_name``, ``last_name``, ``full_name``,
        ``phone``, ``external_id``; articles: ``text``, ``topic_ids``, ``in_support_center``.

        :param collection: ``cases``, ``customers`` or ``articles``.
        :param filters: Desk's search parameters.
        :param per_page: entries per page (1..100).
        """
        return self.iter_entries(self.collection_path(collection, search=True), filters, per_page=per_page)

    def list_related(self, collection: str, entry_id: int | str, sub: str, *,
                     per_page: int = MAX_PER_PAGE) -> Iterator[dict[str, Any]]:
        """Lazily iterate over a sub-collection: a case's ``notes``/``replies``/``attachments``, an
        article's ``attachments``, a company's ``cases``/``customers``, a customer's or filter's
        ``cases``, a topic's ``articles``.

        :param collection: the parent collection.
        :param entry_id: the parent's id.
        :param sub: the sub-collection.
        :param per_page: entries per page (1..100).
        """
        return self.iter_entries(self.collection_path(collection, entry_id, sub), per_page=per_page)

    def show(self, collection: str, entry_id: int | str) -> dict[str, Any]:
        """One entry (``GET /api/v2/{collection}/{id}``).

        :param collection: the collection.
        :param entry_id: its id.
        """
        return self.get_json(f"{self._collection(collection)}/{int(entry_id)}")

    def create(self, collection: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Create an entry; links go under ``_links`` (see :func:`link`).

        :param collection: ``articles``, ``cases``, ``companies``, ``customers``, ``topics`` or ``labels``.
        :param fields: the entry's fields.
        """
        # Not replayed after a dropped connection: Desk has no idempotency key, a replay duplicates.
        return self.request("POST", self._collection(collection, "c"), json=dict(fields)).json()

    def update(self, collection: str, entry_id: int | str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Change an entry's fields (``PATCH``); returns the updated entry.

        :param collection: ``articles``, ``cases``, ``companies``, ``customers``, ``topics`` or ``labels``.
        :param entry_id: its id.
        :param fields: the fields to change.
        """
        return self.request("PATCH", f"{self._collection(collection, 'u')}/{int(entry_id)}",
                            json=dict(fields), idempotent=True).json()

    def create_related(self, collection: str, entry_id: int | str, sub: str,
                       fields: Mapping[str, Any]) -> dict[str, Any]:
        """Add a case note, case reply, or case / article attachment.

        :param collection: ``cases`` or ``articles``.
        :param entry_id: the parent's id.
        :param sub: ``notes``, ``replies`` or ``attachments``.
        :param fields: the new entry (attachments: ``file_name``, ``content_type``, base64 ``content``).
        """
        if sub not in ("notes", "replies", "attachments"):
            raise ValueError(f"Desk cannot create {sub!r} under {collection}")
        return self.request("POST", self.collection_path(collection, entry_id, sub), json=dict(fields)).json()

    # -- cases -------------------------------------------------------------------------------------------
    def create_case(self, subject: str, *, message: Mapping[str, Any] | None = None,
                    customer_id: int | str | None = None, **fields: Any) -> dict[str, Any]:
        """Create a case.

        :param subject: the case's subject.
        :param message: the first message (``{"direction": "in", "body": ..., "from": ..., "to": ...}``).
        :param customer_id: link the case to this customer.
        :param fields: more case fields (``type``, ``status``, ``priority``, ``labels``, ``description`` ...).
        """
        body: dict[str, Any] = {"subject": subject, **fields}
        if message is not None:
            body["message"] = dict(message)
        if customer_id is not None:
            body["_links"] = {"customer": link("customers", customer_id)}
        return self.create("cases", body)

    def reply_to_case(self, case_id: int | str, body: str, **fields: Any) -> dict[str, Any]:
        """Add a reply to a case (``direction``/``status``/``to``/``subject`` in ``fields``).

        :param case_id: the case.
        :param body: the reply's text.
        :param fields: more reply fields.
        """
        return self.create_related("cases", case_id, "replies", {"body": body, **fields})

    def add_case_note(self, case_id: int | str, body: str) -> dict[str, Any]:
        """Add an internal note to a case.

        :param case_id: the case.
        :param body: the note's text.
        """
        return self.create_related("cases", case_id, "notes", {"body": body})

    def forward_case(self, case_id: int | str, to: str, *, note_text: str | None = None,
                     cc: str | None = None, bcc: str | None = None) -> dict[str, Any]:
        """Forward a case by email; returns the outbound reply Desk recorded.

        :param case_id: the case.
        :param to: recipient address(es), comma-separated.
        :param note_text: text sent with the forward.
        :param cc: cc address(es).
        :param bcc: bcc address(es).
        """
        body = {k: v for k, v in {"to": to, "note_text": note_text, "cc": cc, "bcc": bcc}.items() if v is not None}
        return self.request("POST", f"cases/{int(case_id)}/forward", json=body).json()


def link(collection: str, entry_id: int | str) -> dict[str, str]:
    """A HAL link to an entry, as Desk expects under ``_links`` (``{"href": "/api/v2/customers/1"}``).

    :param collection: the collection.
    :param entry_id: the entry's id.
    """
    singular = {"companies": "company", "replies": "reply"}.get(collection, collection.rstrip("s"))
    return {"href": f"{API_PREFIX}{collection}/{int(entry_id)}", "class": singular}


def entry_id(entry: Mapping[str, Any]) -> int | None:
    """The id of a HAL entry (its ``id``, else the tail of ``_links.self.href``).

    :param entry: the entry.
    """
    if entry.get("id") is not None:
        return int(entry["id"])
    tail = str(((entry.get("_links") or {}).get("self") or {}).get("href", "")).rstrip("/").rpartition("/")[2]
    return int(tail) if tail.isdigit() else None
