"""A tiny HTTP client for the emulator tests: plain ``requests`` over loopback, nothing mocked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

USERNAME, PASSWORD = "admin@emulator.local", "emulator"
CLIENT_ID, CLIENT_SECRET = "emulator", "emulator"
V = "/services/data/v62.0"


def emulator_with_schema(directory: Path, schema: dict[str, Any]) -> Any:
    """An (unstarted) ``EmulatorServer`` loading ``schema``, written as a schema file in ``directory``
    (also its cert dir); use it as a context manager.

    :param directory: a temporary directory of the test.
    :param schema: the schema file's document.
    """
    from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

    path = directory / "schema.json"
    path.write_text(json.dumps(schema))
    return EmulatorServer(cert_dir=directory, schema_files=[path])


class EmulatorClient:
    """Requests against one running emulator.

    :param server: an ``EmulatorServer``.
    """

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url = server.url
        self.verify: str | bool = server.ca_bundle or True
        self._token: str | None = None

    def request(self, method: str, path: str, *, token: str | None = None, auth: bool = True, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if auth and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {token or self.token()}"
        return requests.request(method, self.url + path, headers=headers, verify=self.verify, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def token_request(self, **form: str) -> requests.Response:
        return requests.post(self.url + "/services/oauth2/token", data=form, verify=self.verify, timeout=10)

    def password_login(self, username: str = USERNAME, password: str = PASSWORD) -> requests.Response:
        return self.token_request(grant_type="password", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                  username=username, password=password)

    def token(self) -> str:
        """An access token (password grant), cached for this client."""
        if self._token is None:
            reply = self.password_login()
            assert reply.status_code == 200, reply.text
            self._token = reply.json()["access_token"]
        return self._token

    def admin(self, method: str, path: str, payload: Any = None) -> requests.Response:
        return requests.request(method, f"{self.url}/__emulator__/{path}", json=payload, verify=self.verify, timeout=10)

    def stats(self) -> dict:
        return self.admin("GET", "stats").json()
