"""Identity documents: the ``/id/<org>/<user>`` identity URL and OpenID ``userinfo``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..config import MAX_API_VERSION


def _urls(base: str, org_id: str, user_id: str) -> dict[str, str]:
    v = f"{MAX_API_VERSION}.0"
    return {
        "enterprise": f"{base}/services/Soap/c/{{version}}/{org_id[:15]}",
        "metadata": f"{base}/services/Soap/m/{{version}}/{org_id[:15]}",
        "partner": f"{base}/services/Soap/u/{{version}}/{org_id[:15]}",
        "rest": f"{base}/services/data/v{{version}}/",
        "sobjects": f"{base}/services/data/v{{version}}/sobjects/",
        "search": f"{base}/services/data/v{{version}}/search/",
        "query": f"{base}/services/data/v{{version}}/query/",
        "recent": f"{base}/services/data/v{{version}}/recent/",
        "tooling_soap": f"{base}/services/Soap/T/{{version}}/{org_id[:15]}",
        "tooling_rest": f"{base}/services/data/v{{version}}/tooling/",
        "profile": f"{base}/{user_id}",
        "feeds": f"{base}/services/data/v{{version}}/chatter/feeds",
        "groups": f"{base}/services/data/v{{version}}/chatter/groups",
        "users": f"{base}/services/data/v{{version}}/chatter/users",
        "feed_items": f"{base}/services/data/v{{version}}/chatter/feed-items",
        "feed_elements": f"{base}/services/data/v{{version}}/chatter/feed-elements",
        "custom_domain": base,
    } | {"latest_version": v}


def identity_document(base: str, org_id: str, user: dict[str, Any]) -> dict[str, Any]:
    """The identity URL's body, as Salesforce returns it for a session's user.

    :param base: the emulator's base URL as the client reached it.
    :param org_id: the org id.
    :param user: the store's ``User`` record.
    """
    user_id = user["Id"]
    urls = _urls(base, org_id, user_id)
    urls.pop("latest_version")
    first, last = user.get("FirstName") or "", user.get("LastName") or ""
    return {
        "id": f"{base}/id/{org_id}/{user_id}",
        "asserted_user": True,
        "user_id": user_id,
        "organization_id": org_id,
        "username": user.get("Username"),
        "nick_name": (user.get("Username") or "").split("@")[0],
        "display_name": f"{first} {last}".strip(),
        "email": user.get("Email"),
        "email_verified": True,
        "first_name": first or None,
        "last_name": last,
        "timezone": user.get("TimeZoneSidKey") or "America/Los_Angeles",
        "photos": {"picture": f"{base}/profilephoto/005/F", "thumbnail": f"{base}/profilephoto/005/T"},
        "addr_street": None, "addr_city": None, "addr_state": None, "addr_country": None, "addr_zip": None,
        "mobile_phone": None,
        "mobile_phone_verified": False,
        "is_lightning_login_user": False,
        "status": {"created_date": None, "body": None},
        "urls": urls,
        "active": True,
        "user_type": "STANDARD",
        "language": user.get("LanguageLocaleKey") or "en_US",
        "locale": user.get("LocaleSidKey") or "en_US",
        "utcOffset": -28800000,
        "last_modified_date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "is_app_installed": True,
    }


def userinfo_document(base: str, org_id: str, user: dict[str, Any]) -> dict[str, Any]:
    """The OpenID Connect ``userinfo`` body.

    :param base: the emulator's base URL as the client reached it.
    :param org_id: the org id.
    :param user: the store's ``User`` record.
    """
    ident = identity_document(base, org_id, user)
    return {
        "sub": ident["id"],
        "user_id": ident["user_id"],
        "organization_id": org_id,
        "preferred_username": ident["username"],
        "nickname": ident["nick_name"],
        "name": ident["display_name"],
        "email": ident["email"],
        "email_verified": True,
        "given_name": ident["first_name"],
        "family_name": ident["last_name"],
        "zoneinfo": ident["timezone"],
        "photos": ident["photos"],
        "profile": f"{base}/{ident['user_id']}",
        "picture": ident["photos"]["picture"],
        "address": {},
        "is_salesforce_integration_user": False,
        "urls": ident["urls"],
        "active": True,
        "user_type": "STANDARD",
        "language": ident["language"],
        "locale": ident["locale"],
        "utcOffset": ident["utcOffset"],
        "updated_at": ident["last_modified_date"],
        "is_app_installed": True,
    }
