"""``salesforce-suite-emulator snapshot``: a real org's schema (and sample records) as a schema file.

Reads describe results and, optionally, N records per object through a ``salesforce_suite``
connection (the provider's REST hook), and writes a schema file that ``--schema`` and the pytest
fixture load: every selected object as a ``"complete"`` spec (all its fields, describe-level keys),
the sampled records under ``"records"`` (ids kept), and under ``"omitted"`` what was left out and
why. Secrets are never written: encrypted fields and fields named like secrets (passwords, tokens,
keys) are left out of both the schema and the records.

Records are streamed through a temporary file (only ids are kept in memory), so a large sample
does not have to fit in memory; references to records outside the sample are dropped, so the file
always loads.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from ..core.errors import SalesforceApiError

#: Field names that hold secrets in some org: never written, whatever their type.
SECRET_NAME = re.compile(r"passw(or)?d|secret|token|credential|private_?key|api_?key|session_?id|access_?key",
                         re.IGNORECASE)
#: Describe types a schema file can carry (the rest are compound or not emulated).
_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox",
                    "boolean", "double", "int", "currency", "percent", "date", "datetime", "time", "reference",
                    "id", "base64"})
_FLAGS = ("nillable", "createable", "updateable", "defaultedOnCreate", "unique", "externalId", "idLookup",
          "nameField", "autoNumber", "calculated", "cascadeDelete", "custom")
#: The longest SELECT list of one sampling query: the query travels in a GET URL, which Salesforce
#: refuses past about 16 KB, and a URL-encoded list grows.
FIELD_LIST_CHARS = 6000
#: Custom objects a snapshot takes by default: custom objects and platform events (not __mdt, __x, __b ...).
_CUSTOM_SUFFIXES = ("__c", "__e")


class SnapshotError(ValueError):
    """The snapshot cannot be taken as asked (an unknown object named, a bad sample size)."""


class OrgReader(Protocol):
    """What a snapshot reads: :class:`~airflow_provider_salesforce_suite.hooks.rest.SalesforceRestHook`."""

    def describe_global(self) -> dict[str, Any]: ...

    def describe(self, sobject: str) -> dict[str, Any]: ...

    def query(self, soql: str) -> Iterator[dict[str, Any]]: ...


@dataclass
class SnapshotResult:
    """What a snapshot wrote.

    :param objects: object names in the file.
    :param records: sampled records written.
    :param omitted: object name -> field name (``*``: the whole object, ``(records)``: its records)
        -> reason.
    """

    objects: list[str] = field(default_factory=list)
    records: int = 0
    omitted: dict[str, dict[str, str]] = field(default_factory=dict)


def secret_reason(describe_field: dict[str, Any]) -> str | None:
    """Why a field must never be written (``None``: it may be).

    :param describe_field: one entry of a describe result's ``fields``.
    """
    if describe_field.get("encrypted") or describe_field.get("type") == "encryptedstring":
        return "secret: encrypted field"
    if SECRET_NAME.search(describe_field["name"]):
        return "secret: named like a password, token or key"
    return None


def select_objects(describe_global: dict[str, Any], named: Sequence[str]) -> list[str]:
    """The org's custom objects and platform events, plus the objects named, in describeGlobal's order.

    :param describe_global: the org's describeGlobal result.
    :param named: objects the user asked for (any casing).
    :raises SnapshotError: a named object is not in the org.
    """
    by_lower = {o["name"].lower(): o["name"] for o in describe_global["sobjects"]}
    missing = [n for n in named if n.lower() not in by_lower]
    if missing:
        raise SnapshotError(f"the org has no object {', '.join(map(repr, missing))}")
    wanted = {by_lower[n.lower()] for n in named}
    return [o["name"] for o in describe_global["sobjects"]
            if o["name"] in wanted or (o.get("custom") and o["name"].endswith(_CUSTOM_SUFFIXES))]


def _child_names(describes: Iterable[dict[str, Any]]) -> dict[tuple[str, str], str | None]:
    """(child object, reference field) -> child relationship name, from the parents' describes."""
    names: dict[tuple[str, str], str | None] = {}
    for parent in describes:
        for rel in parent.get("childRelationships", []):
            key = (rel["childSObject"], rel["field"])
            names[key] = names.get(key) or rel.get("relationshipName")
    return names


def field_spec(obj_name: str, d: dict[str, Any], loadable: set[str],
               child_names: dict[tuple[str, str], str | None]) -> tuple[dict[str, Any] | None, str | None]:
    """A describe field as a schema-file field spec, or ``(None, why it is left out)``.

    :param obj_name: the field's object.
    :param d: the describe entry.
    :param loadable: objects that exist once the file is loaded (in it or built into the emulator).
    :param child_names: child relationship names from the parents' describes.
    """
    reason = secret_reason(d)
    if reason:
        return None, reason
    if d["type"] not in _TYPES:
        return None, f"type {d['type']} is not emulated" + (" (a compound field: its parts are fields too)"
                                                            if d["type"] in ("address", "location") else "")
    spec: dict[str, Any] = {"type": d["type"], "label": d["label"]}
    if d.get("length"):
        spec["length"] = d["length"]
    if d["type"] in ("double", "currency", "percent"):
        spec["precision"], spec["scale"] = d.get("precision", 0), d.get("scale", 0)
    if d["type"] == "int":
        spec["digits"] = d.get("digits", 0)
    for flag in _FLAGS:
        spec[flag] = bool(d.get(flag))
    if d["type"] in ("picklist", "multipicklist", "combobox"):
        spec["restricted"] = bool(d.get("restrictedPicklist"))
        spec["values"] = [{"value": p["value"], "label": p.get("label") or p["value"],
                           "default": bool(p.get("defaultValue")), "active": bool(p.get("active", True))}
                          for p in d.get("picklistValues", [])]
    default = d.get("defaultValue")
    if isinstance(default, (str, int, float, bool)):
        spec["default"] = default
    if d["type"] == "reference":
        targets = [t for t in d.get("referenceTo", []) if t in loadable]
        if not targets:
            return None, (f"references {', '.join(d.get('referenceTo', [])) or 'nothing'}, not in the snapshot "
                          "(add it with --objects)")
        spec["referenceTo"] = targets
        spec["relationshipName"] = d.get("relationshipName")
        spec["childRelationshipName"] = child_names.get((obj_name, d["name"]))
    return spec, None


def object_spec(describe: dict[str, Any], loadable: set[str], child_names: dict[tuple[str, str], str | None],
                omitted: dict[str, str]) -> dict[str, Any]:
    """A describe result as a complete schema-file object spec; left-out fields go to ``omitted``.

    :param describe: the object's describe result.
    :param loadable: objects that exist once the file is loaded.
    :param child_names: child relationship names from the parents' describes.
    :param omitted: filled with field name -> reason.
    """
    fields: dict[str, Any] = {}
    for d in describe["fields"]:
        spec, reason = field_spec(describe["name"], d, loadable, child_names)
        if spec is None:
            omitted[d["name"]] = reason or "left out"
        else:
            fields[d["name"]] = spec
    return {
        "label": describe["label"], "pluralLabel": describe["labelPlural"], "keyPrefix": describe["keyPrefix"],
        "complete": True, **{k: bool(describe.get(k)) for k in ("createable", "updateable", "deletable", "queryable")},
        "fields": fields,
    }


def _scalar(value: Any) -> bool:
    """Whether a queried value is a plain field value (not a compound or relationship object)."""
    return not isinstance(value, (dict, list))


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "attributes" and _scalar(v)}


def _sample_soql(name: str, fields: Sequence[str], size: int) -> str:
    return f"SELECT {', '.join(fields)} FROM {name} ORDER BY Id LIMIT {size}"


def field_chunks(fields: Sequence[str], limit: int | None = None) -> list[list[str]]:
    """``fields`` in chunks whose SELECT lists stay under ``limit`` characters, each led by ``Id``.

    :param fields: field names (``Id`` among them or not).
    :param limit: the longest SELECT list (default :data:`FIELD_LIST_CHARS`).
    """
    limit = FIELD_LIST_CHARS if limit is None else limit
    chunks: list[list[str]] = [["Id"]]
    for name in fields:
        if name == "Id":
            continue
        if len(chunks[-1]) > 1 and sum(len(f) + 2 for f in chunks[-1]) + len(name) > limit:
            chunks.append(["Id"])
        chunks[-1].append(name)
    return chunks


class _Sampler:
    """Streams sampled records to a temporary JSON-lines file, keeping only their ids in memory."""

    def __init__(self, spool: IO[str]) -> None:
        self.spool = spool
        self.ids: set[str] = set()
        self.count = 0

    def sample(self, reader: OrgReader, name: str, fields: list[str], size: int) -> None:
        chunks = field_chunks(fields)
        rows: Iterable[dict[str, Any]] = (_plain(r) for r in reader.query(_sample_soql(name, chunks[0], size)))
        if len(chunks) > 1:
            # A wide object: a query's GET URL has a length limit, so one query per chunk of fields,
            # joined by Id (the first chunk's records are the sample; this holds them in memory).
            merged = {row["Id"]: row for row in rows}
            for chunk in chunks[1:]:
                for record in reader.query(_sample_soql(name, chunk, size)):
                    row = _plain(record)
                    if row["Id"] in merged:
                        merged[row["Id"]].update(row)
            rows = merged.values()
        for row in rows:
            self.ids.add(str(row.get("Id", ""))[:15])
            self.spool.write(json.dumps([name, row]) + "\n")
            self.count += 1

    def rows(self, references: dict[str, set[str]]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The spooled rows, references to records outside the sample dropped."""
        self.spool.seek(0)
        for line in self.spool:
            name, row = json.loads(line)
            for fname in references.get(name, ()):
                value = row.get(fname)
                if value is not None and str(value)[:15] not in self.ids:
                    del row[fname]
            yield name, row


def take_snapshot(reader: OrgReader, out: IO[str], *, objects: Sequence[str] = (), sample: int = 0,
                  builtin: Iterable[str] = (), info: dict[str, Any] | None = None,
                  progress: Callable[[str], None] = lambda _msg: None) -> SnapshotResult:
    """Write a schema file of the org ``reader`` reads.

    :param reader: the org (a REST hook).
    :param out: where the JSON goes.
    :param objects: objects to take besides the org's custom objects.
    :param sample: records to sample per object (0: none).
    :param builtin: objects the emulator has without a schema file (references to them are kept).
    :param info: extra ``"snapshot"`` facts (instance URL, API version).
    :param progress: called with one line per step.
    :raises SnapshotError: an unknown object was named or ``sample`` is negative.
    """
    if sample < 0:
        raise SnapshotError(f"--sample must be 0 or more, got {sample}")
    result = SnapshotResult()
    specs = _describe_all(reader, select_objects(reader.describe_global(), objects), set(builtin), result, progress)
    result.objects = list(specs)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        sampler = _Sampler(spool)
        if sample:
            _sample_all(reader, specs, sample, sampler, result, progress)
        result.records = sampler.count
        references = {name: {f for f, s in spec["fields"].items() if s["type"] == "reference"}
                      for name, spec in specs.items()}
        header = {  # no "$schema": the installed JSON Schema's path differs from machine to machine
            "snapshot": {**(info or {}), "takenAt": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                         "sample": sample, "tool": "salesforce-suite-emulator snapshot"},
            "omitted": result.omitted,
        }
        _write(out, header, specs, sampler.rows(references))
    return result


def _describe_all(reader: OrgReader, names: list[str], builtin: set[str], result: SnapshotResult,
                  progress: Callable[[str], None]) -> dict[str, Any]:
    """Object name -> complete spec; what is left out goes to ``result.omitted``."""
    describes: dict[str, dict[str, Any]] = {}
    for name in names:
        describe = reader.describe(name)
        if not describe.get("keyPrefix"):
            result.omitted.setdefault(name, {})["*"] = "the object has no key prefix (no records of its own)"
            continue
        describes[name] = describe
    loadable = set(describes) | builtin
    # Child relationship names live in the parents' describes: describe the parents not taken too.
    parents = {t for d in describes.values() for f in d["fields"] if f["type"] == "reference"
               for t in f.get("referenceTo", []) if t in loadable and t not in describes}
    child_names = _child_names([*describes.values(), *(reader.describe(p) for p in sorted(parents))])
    specs: dict[str, Any] = {}
    for name, describe in describes.items():
        omitted: dict[str, str] = {}
        specs[name] = object_spec(describe, loadable, child_names, omitted)
        if omitted:
            result.omitted.setdefault(name, {}).update(omitted)
        progress(f"described {name}: {len(specs[name]['fields'])} fields"
                 + (f", {len(omitted)} left out" if omitted else ""))
    return specs


def _sample_all(reader: OrgReader, specs: dict[str, Any], sample: int, sampler: _Sampler, result: SnapshotResult,
                progress: Callable[[str], None]) -> None:
    """Up to ``sample`` records of each queryable object into ``sampler``; refusals go to ``result.omitted``."""
    for name, spec in specs.items():
        if not spec["queryable"]:
            continue
        if SECRET_NAME.search(name):
            result.omitted.setdefault(name, {})["(records)"] = "not sampled: secret: object named like a credential"
            continue
        fields = [f for f, s in spec["fields"].items() if s["type"] != "base64"]
        before = sampler.count
        try:
            sampler.sample(reader, name, fields, sample)
        except SalesforceApiError as exc:
            if not 400 <= exc.status < 500:
                raise
            # Some objects refuse a plain query (they need a filter, or this user lacks access).
            result.omitted.setdefault(name, {})["(records)"] = f"not sampled: {exc.error_code}: {exc.message}"
        progress(f"sampled {name}: {sampler.count - before} records")


def _write(out: IO[str], header: dict[str, Any], specs: dict[str, Any],
           rows: Iterator[tuple[str, dict[str, Any]]]) -> None:
    """The file: header keys, one line per field spec, one line per record (rows arrive grouped)."""
    out.write("{\n")
    for key, value in header.items():
        out.write(f"  {json.dumps(key)}: {json.dumps(value)},\n")
    out.write('  "objects": {')
    for i, (name, spec) in enumerate(specs.items()):
        head = {k: v for k, v in spec.items() if k != "fields"}
        out.write(("," if i else "") + f"\n    {json.dumps(name)}: {json.dumps(head)[:-1]}, \"fields\": {{")
        for j, (fname, fspec) in enumerate(spec["fields"].items()):
            out.write(("," if j else "") + f"\n      {json.dumps(fname)}: {json.dumps(fspec)}")
        out.write("\n    }}")
    out.write("\n  },\n  \"records\": {")
    current = None
    for name, row in rows:
        if name != current:
            out.write(("\n    ]," if current else "") + f"\n    {json.dumps(name)}: [\n      ")
            current = name
        else:
            out.write(",\n      ")
        out.write(json.dumps(row))
    out.write("\n    ]\n  }\n}\n" if current else "}\n}\n")


def snapshot_to_file(conn_id: str, path: str | os.PathLike[str], *, objects: Sequence[str] = (), sample: int = 0,
                     api_version: str | None = None,
                     progress: Callable[[str], None] = lambda _msg: None) -> SnapshotResult:
    """Snapshot the org of an Airflow ``salesforce_suite`` connection into a schema file.

    The file is written next to ``path`` and renamed into place, so a failed snapshot leaves no
    half-written file.

    :param conn_id: the Airflow connection id.
    :param path: the schema file to write.
    :param objects: objects to take besides the org's custom objects.
    :param sample: records to sample per object.
    :param api_version: overrides the connection's API version.
    :param progress: called with one line per step.
    """
    from ..hooks.rest import SalesforceRestHook
    from .metadata import load_metadata

    hook = SalesforceRestHook(salesforce_conn_id=conn_id, api_version=api_version)
    builtin = set(load_metadata().objects)
    info = {"instanceUrl": hook.instance_url, "apiVersion": hook.api_version}
    target = os.fspath(path)
    partial = f"{target}.partial"
    try:
        with open(partial, "w", encoding="utf-8") as out:
            result = take_snapshot(hook, out, objects=objects, sample=sample, builtin=builtin, info=info,
                                   progress=progress)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return result
