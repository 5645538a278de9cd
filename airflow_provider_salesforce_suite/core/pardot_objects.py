"""Pardot v5 objects, one small spec each (path, fields, allowed operations): the one table
behind both PardotHook and the emulator (pure data, no imports beyond the standard library).

The same table drives the v4 ``query`` operation (``v4`` names the v4 object).
"""

from __future__ import annotations

from dataclasses import dataclass

CRUD = frozenset({"create", "read", "update", "delete"})
READ = frozenset({"read"})
_COMMON = ("id", "createdAt", "updatedAt")


@dataclass(frozen=True)
class PardotObjectSpec:
    """One v5 object.

    :param path: the segment under ``/api/v5/objects/`` (``prospects``).
    :param fields: field names besides ``id``, ``createdAt``, ``updatedAt``.
    :param operations: what the API allows (``create``, ``read``, ``update``, ``delete``).
    :param required: fields a create must set.
    :param v4: the v4 object name (``prospect``), if v4 serves it.
    """

    path: str
    fields: tuple[str, ...]
    operations: frozenset[str] = CRUD
    required: tuple[str, ...] = ()
    v4: str | None = None

    @property
    def all_fields(self) -> tuple[str, ...]:
        return _COMMON + self.fields


OBJECTS: dict[str, PardotObjectSpec] = {spec.path: spec for spec in (
    PardotObjectSpec("prospects", ("email", "firstName", "lastName", "company", "score", "grade", "campaignId",
                                   "prospectAccountId", "isDoNotEmail", "optedOut", "lifecycleStageId"),
                     required=("email",), v4="prospect"),
    PardotObjectSpec("prospect-accounts", ("name", "website", "phone", "industry"), required=("name",),
                     v4="prospectAccount"),
    PardotObjectSpec("campaigns", ("name", "cost", "folderId"), frozenset({"read", "update"}), v4="campaign"),
    PardotObjectSpec("lists", ("name", "title", "description", "isDynamic", "isPublic"), required=("name",),
                     v4="list"),
    PardotObjectSpec("list-memberships", ("listId", "prospectId", "optedOut"), required=("listId", "prospectId"),
                     v4="listMembership"),
    PardotObjectSpec("list-emails", ("name", "subject", "campaignId", "isSent"), v4=None),
    PardotObjectSpec("emails", ("prospectId", "listIds", "subject", "campaignId", "emailTemplateId", "sentAt"),
                     frozenset({"create", "read"}), v4="email"),
    PardotObjectSpec("email-templates", ("name", "subject", "htmlMessage", "textMessage"), required=("name",)),
    PardotObjectSpec("forms", ("name", "campaignId", "folderId"), frozenset({"read", "delete"}), v4="form"),
    PardotObjectSpec("form-handlers", ("name", "url", "campaignId", "folderId"), required=("name",)),
    PardotObjectSpec("landing-pages", ("name", "url", "campaignId"), frozenset({"read", "update", "delete"})),
    PardotObjectSpec("custom-fields", ("name", "fieldId", "type"), required=("name", "fieldId"),
                     v4="customField"),
    PardotObjectSpec("custom-redirects", ("name", "url", "destinationUrl", "campaignId"),
                     required=("name", "destinationUrl")),
    PardotObjectSpec("tags", ("name", "objectCount"), required=("name",), v4="tag"),
    PardotObjectSpec("tagged-objects", ("tagId", "objectType", "objectId"), frozenset({"create", "read", "delete"}),
                     required=("tagId", "objectType", "objectId"), v4="tagObject"),
    PardotObjectSpec("users", ("email", "firstName", "lastName", "role"), READ, v4="user"),
    PardotObjectSpec("visitors", ("prospectId", "ipAddress", "hostname", "pageViewCount"), READ, v4="visitor"),
    PardotObjectSpec("visits", ("visitorId", "prospectId", "visitorPageViewCount", "durationInSeconds"), READ,
                     v4="visit"),
    PardotObjectSpec("visitor-activities", ("prospectId", "visitorId", "type", "typeName", "details",
                                            "campaignId"), READ, v4="visitorActivity"),
    PardotObjectSpec("opportunities", ("name", "value", "probability", "stage", "status", "campaignId"),
                     required=("name",), v4="opportunity"),
    PardotObjectSpec("lifecycle-stages", ("name", "position", "isLocked"), READ),
    PardotObjectSpec("lifecycle-histories", ("prospectId", "previousStageId", "nextStageId"), READ),
    PardotObjectSpec("files", ("name", "url", "folderId", "size"), required=("name",)),
    PardotObjectSpec("dynamic-contents", ("name", "basedOn", "embedCode", "folderId"), frozenset({"read"})),
)}

V4_OBJECTS: dict[str, PardotObjectSpec] = {spec.v4: spec for spec in OBJECTS.values() if spec.v4}
