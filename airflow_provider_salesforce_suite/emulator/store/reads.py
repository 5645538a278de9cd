"""Reads: retrieve (by id or external id), users and record counts, describe, SOQL queries
and query-more, SOSL search, explain, recent items and base64 blobs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .. import ids
from ..errors import SalesforceApiError
from ..metadata import ObjectDef
from ..metadata.describe import basic_info, describe_global, describe_object, version_path
from ..metadata.model import FieldDef
from ..metadata.validation import api_value
from ..soql.explain import plans as explain_plans
from ..soql.parser import parse as parse_soql
from ..sosl import SearchEngine
from ..sosl import parse as parse_sosl
from ..sosl.engine import searchable_objects
from .core import StoreBase, _not_found, _q


class RecordReads(StoreBase):
    """Read-only operations: records, describes, queries, searches and blobs."""

    # ----------------------------------------------------------------- reads

    def retrieve_by_external_id(self, sobject: str, field: str, value: str, fields: Sequence[str] | None = None,
                                *, api_version: str) -> dict:
        """``GET /sobjects/X/Field/value``.

        :param sobject: object name.
        :param field: an External ID field.
        :param value: the value.
        :param fields: fields to return (all by default).
        :param api_version: API version for ``attributes.url``.
        """
        obj = self.metadata.require(sobject)
        fdef = self._external_id_field(obj, field)
        with self._lock:
            matches = self._match_external(obj, fdef, value, api_version)
            if not matches:
                raise _not_found()
            return self.retrieve(obj.name, matches[0], fields, api_version=api_version)

    def retrieve(self, sobject: str, record_id: str, fields: Sequence[str] | None = None, *,
                 api_version: str) -> dict:
        """``GET /sobjects/X/id``: the record in REST shape, ``attributes`` first.

        :param sobject: object name.
        :param record_id: 15- or 18-char id.
        :param fields: fields to return (all by default; ``Id`` is always included).
        :param api_version: API version for ``attributes.url``.
        """
        obj = self.metadata.require(sobject)
        normalized = ids.normalize(record_id)
        if normalized is None:
            # Salesforce reads a non-id path segment as an external id field name.
            raise SalesforceApiError(
                "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {record_id}",
                status=404,
            )
        if normalized[:3] != obj.key_prefix:
            raise SalesforceApiError(
                "MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {record_id}", fields=["Id"]
            )
        if fields:
            wanted: list[FieldDef] = []
            for name in fields:
                fdef = obj.field(name.strip())
                if fdef is None:
                    raise SalesforceApiError(
                        "INVALID_FIELD", f"No such column '{name.strip()}' on sobject of type {obj.name}"
                    )
                if fdef not in wanted:
                    wanted.append(fdef)
            if obj.fields["Id"] not in wanted:
                wanted.append(obj.fields["Id"])
        else:
            wanted = list(obj.fields.values())
        with self._lock:
            row = self._fetch(obj, [normalized]).get(normalized)
        if row is None or row["IsDeleted"]:
            raise _not_found()
        record: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": f"{version_path(api_version)}/sobjects/{obj.name}/{normalized}"}
        }
        for fdef in wanted:
            record[fdef.name] = api_value(fdef, row[fdef.name])
        return record

    def find_user(self, username: str) -> dict | None:
        """The User with ``Username`` (case-insensitive), as a field dict, or ``None``.

        :param username: the username.
        """
        obj = self.metadata.objects["User"]
        with self._lock:
            row = self._conn.execute(
                f'SELECT "Id" FROM {_q("User")} WHERE "IsDeleted" = 0 AND "Username" = ?', (username,)
            ).fetchone()
            if row is None:
                return None
            return self._api_record(obj, self._fetch(obj, [row[0]])[row[0]])

    def record_counts(self, sobjects: Sequence[str] | None = None) -> dict:
        """``/limits/recordCount``: live record counts per object.

        :param sobjects: object names (all objects by default).
        """
        objs = [self.metadata.require(n) for n in sobjects] if sobjects else list(self.metadata.objects.values())
        counts = []
        with self._lock:
            for obj in objs:
                count = self._conn.execute(f'SELECT COUNT(*) FROM {_q(obj.name)} WHERE "IsDeleted" = 0').fetchone()[0]
                counts.append({"count": count, "name": obj.name})
        return {"sObjects": counts}

    # ----------------------------------------------------------------- describe

    def describe_global(self, *, api_version: str) -> dict:
        """``GET /sobjects``.

        :param api_version: API version for urls.
        """
        return describe_global(self.metadata, api_version)

    def describe(self, sobject: str, *, api_version: str) -> dict:
        """``GET /sobjects/X/describe``.

        :param sobject: object name.
        :param api_version: API version for urls.
        """
        return describe_object(self.metadata, self.metadata.require(sobject), api_version)

    def sobject_basic_info(self, sobject: str, *, api_version: str) -> dict:
        """``GET /sobjects/X``: the object's basic describe and its most recently modified records.

        :param sobject: object name.
        :param api_version: API version for urls.
        """
        obj = self.metadata.require(sobject)
        name_field = obj.name_field
        cols = ['"Id"'] + ([_q(name_field.name)] if name_field else [])
        with self._lock:
            rows = self._conn.execute(
                f'SELECT {", ".join(cols)} FROM {_q(obj.name)} WHERE "IsDeleted" = 0 '
                'ORDER BY "LastModifiedDate" DESC, rowid DESC LIMIT 10'
            ).fetchall()
        recent = []
        for row in rows:
            item: dict[str, Any] = {"attributes": {"type": obj.name,
                                                   "url": f"{version_path(api_version)}/sobjects/{obj.name}/{row[0]}"},
                                    "Id": row[0]}
            if name_field:
                item[name_field.name] = row[1]
            recent.append(item)
        return {"objectDescribe": basic_info(obj, api_version), "recentItems": recent}

    # ----------------------------------------------------------------- SOQL

    def query(self, soql: str, *, include_deleted: bool = False, batch_size: int = 2000, api_version: str) -> dict:
        """Run a SOQL query; the first page of results in the REST shape.

        :param soql: the query.
        :param include_deleted: include recycle-bin rows (``queryAll``).
        :param batch_size: page size, clamped to Salesforce's 200..2000.
        :param api_version: API version for urls.
        """
        batch_size = max(200, min(2000, int(batch_size)))
        plan = self._engine.compile(soql, include_deleted=include_deleted)
        with self._lock:
            rows = plan.fetch(self._conn)
            if plan.count_only:
                return {"totalSize": rows, "done": True, "records": []}
            page = rows[:batch_size]
            records = plan.shape(self._conn, page, api_version)
            result: dict[str, Any] = {"totalSize": len(rows), "done": len(rows) <= batch_size, "records": records}
            if len(rows) > batch_size:
                locator = self._cursors.open(plan, rows, batch_size)
                result["nextRecordsUrl"] = f"{version_path(api_version)}/query/{locator}"
        return result

    def query_more(self, locator: str, *, api_version: str) -> dict:
        """The next page of a query, by the last path segment of its ``nextRecordsUrl``.

        :param locator: e.g. ``01gXXXXXXXXXXXXXXX-2000``.
        :param api_version: API version for urls.
        """
        with self._lock:
            cursor, start = self._cursors.get(locator)
            page = cursor.rows[start:start + cursor.batch_size]
            records = cursor.plan.shape(self._conn, page, api_version)
            end = start + len(page)
            done = end >= len(cursor.rows)
            result: dict[str, Any] = {"totalSize": len(cursor.rows), "done": done, "records": records}
            if done:
                self._cursors.close(locator)
            else:
                result["nextRecordsUrl"] = f"{version_path(api_version)}/query/{cursor.locator}-{end}"
        return result

    # ----------------------------------------------------------------- search, explain, recent items

    def search(self, sosl: str, *, api_version: str) -> list[dict]:
        """Run a SOSL search; the ``searchRecords``.

        :param sosl: the SOSL statement.
        :param api_version: API version for urls.
        """
        query = parse_sosl(sosl)
        engine = self.__dict__.get("_search_engine")
        if engine is None:
            engine = self.__dict__["_search_engine"] = SearchEngine(self.metadata, self._engine)
        with self._lock:
            return engine.run(query, self._conn, api_version)

    def explain(self, soql: str) -> dict:
        """``/query?explain=``: the query plans Salesforce would consider.

        :param soql: the query.
        """
        plan = self._engine.compile(soql)
        query = parse_soql(soql)
        obj = self.metadata.require(query.sobject)
        with self._lock:
            if plan.count_only or plan.aggregate is not None:
                cardinality = self._conn.execute(
                    f'SELECT COUNT(*) FROM {_q(obj.name)} WHERE "IsDeleted" = 0').fetchone()[0]
            else:
                plan.limit = plan.offset = None
                cardinality = len(plan.fetch(self._conn))
            total = self._conn.execute(f'SELECT COUNT(*) FROM {_q(obj.name)} WHERE "IsDeleted" = 0').fetchone()[0]
        return {"plans": explain_plans(obj, query, cardinality, total), "sourceQuery": soql}

    def recent_items(self, limit: int, *, api_version: str) -> list[dict]:
        """The most recently created or modified business records, newest first.

        The emulator has no UI, so "recently viewed" means touched through an API.

        :param limit: at most this many.
        :param api_version: API version for urls.
        """
        found: list[tuple[str, str, ObjectDef, Any]] = []
        with self._lock:
            for obj in searchable_objects(self.metadata):
                name_field = obj.name_field
                name_sql = _q(name_field.name) if name_field else "NULL"
                for rid, modified, name in self._conn.execute(
                    f'SELECT "Id", "LastModifiedDate", {name_sql} FROM {_q(obj.name)} WHERE "IsDeleted" = 0 '
                    'ORDER BY "LastModifiedDate" DESC, rowid DESC LIMIT ?', (limit,)):
                    found.append((modified, rid, obj, name))
        found.sort(key=lambda item: (item[0], item[1]), reverse=True)
        items = []
        for _, rid, obj, name in found[:limit]:
            item: dict[str, Any] = {"attributes": {"type": obj.name,
                                                   "url": f"{version_path(api_version)}/sobjects/{obj.name}/{rid}"},
                                    "Id": rid}
            if obj.name_field:
                item[obj.name_field.name] = name
            items.append(item)
        return items

    # ----------------------------------------------------------------- blobs

    def blob_length(self, sobject: str, record_id: str, field_name: str) -> int:
        """Decoded byte length of a base64 field (``Attachment.Body``), or NOT_FOUND.

        :param sobject: object name.
        :param record_id: the record id.
        :param field_name: a base64 field.
        """
        obj = self.metadata.require(sobject)
        fdef = obj.field(field_name)
        if fdef is None or fdef.type != "base64":
            raise _not_found()
        normalized = self._check_id(obj, record_id)
        with self._lock:
            row = self._conn.execute(
                f'SELECT length({_q(fdef.name)}), substr({_q(fdef.name)}, -2) FROM {_q(obj.name)} '
                'WHERE "Id" = ? AND "IsDeleted" = 0', (normalized,)).fetchone()
        if row is None:
            raise _not_found()
        if row[0] is None:
            return 0
        return row[0] // 4 * 3 - (row[1] or "").count("=")

    def blob_chunks(self, sobject: str, record_id: str, field_name: str,
                    chunk_size: int = 3 * 1024 * 16) -> Iterator[bytes]:
        """Yield a base64 field's decoded bytes in chunks, reading the stored text piecewise.

        :param sobject: object name.
        :param record_id: the record id (checked by :meth:`blob_length` first).
        :param field_name: a base64 field.
        :param chunk_size: decoded bytes per chunk (a multiple of 3).
        """
        import base64

        obj = self.metadata.require(sobject)
        column = _q(obj.field(field_name).name)
        normalized = ids.normalize(record_id)
        encoded = chunk_size // 3 * 4
        start = 1
        while True:
            with self._lock:
                row = self._conn.execute(f'SELECT substr({column}, ?, ?) FROM {_q(obj.name)} WHERE "Id" = ?',
                                         (start, encoded, normalized)).fetchone()
            text = row[0] if row else None
            if not text:
                return
            yield base64.b64decode(text)
            start += encoded
