"""Seed records: rows loaded at start-up and after every reset (a schema file's ``records``).

Ids are kept as given (so references between seeded records, and ids a user's tests know, hold);
a record without an ``Id`` gets a new one. Audit fields (``CreatedDate`` ...) and read-only fields
(formulas, auto-numbers) are taken as given, since they are what a snapshot sampled; missing ones
get what an insert would give. A seeded id the org already has (the admin user) updates that row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import ids
from ..errors import SalesforceApiError
from ..metadata import ObjectDef, SchemaError
from ..metadata.validation import RecordValidator
from .core import _CHUNK, ADMIN_USER_ID, StoreBase, _q


class SeedLoading(StoreBase):
    """Loads seed records: the schema files' after the rows every org has, and any caller's."""

    def _seed(self, **options: Any) -> None:
        # A new database (no user yet) or a reset gets the seed records; reopening a file does not.
        fresh = self._conn.execute(f'SELECT 1 FROM {_q("User")} LIMIT 1').fetchone() is None
        super()._seed(**options)
        if fresh or not options.get("only_empty"):
            for seed in self.metadata.seed_records:
                self.load_records(seed.records, source=seed.source)

    def load_records(self, records: Mapping[str, Sequence[Mapping[str, Any]]], *, source: str = "seed") -> int:
        """Insert records as given, all or none; returns how many.

        Values are checked and converted as an insert would (types, lengths, restricted
        picklists), but read-only and audit fields are accepted. References must point at a
        seeded record or one the org has.

        :param records: object name -> records (field name -> value as the REST API takes it).
        :param source: where they come from, named in errors (a schema file's path).
        :raises SchemaError: a record is invalid (the message names ``records.Object[index].Field``).
        """
        with self._lock:
            now = self._now()
            self._begin()
            try:
                seeded: dict[str, list[str]] = {}
                for obj_name, rows in records.items():
                    obj = self.metadata.get(obj_name)
                    if obj is None:
                        raise SchemaError(f"{source}: records.{obj_name}: unknown object {obj_name!r}")
                    validator = self._validator(obj)
                    for index, row in enumerate(rows):
                        where = f"{source}: records.{obj.name}[{index}]"
                        record_id, values = self._seed_values(obj, validator, row, where)
                        self._seed_row(obj, validator, record_id, values, now)
                        seeded.setdefault(obj.name, []).append(record_id)
                for obj_name, record_ids in seeded.items():
                    self._check_seeded_references(self.metadata.objects[obj_name], record_ids, source)
                    # Ids an emulator made (a snapshot of one) must not be made again here.
                    counters = [ids.IdGenerator.counter_of(i) or 0 for i in record_ids]
                    self._ids.skip_past(max(counters, default=0))
                self._commit()
            except BaseException:
                self._rollback()
                raise
        return sum(len(v) for v in seeded.values())

    def _seed_values(self, obj: ObjectDef, validator: RecordValidator, row: Mapping[str, Any],
                     where: str) -> tuple[str, dict[str, Any]]:
        record_id = None
        values: dict[str, Any] = {}
        for key, value in row.items():
            if key == "attributes":
                continue
            fdef = obj.field(key)
            if fdef is None:
                raise SchemaError(f"{where}: {obj.name} has no field {key!r}")
            if fdef.name == "Id":
                record_id = ids.normalize(value)
                if record_id is None or record_id[:3] != obj.key_prefix:
                    raise SchemaError(f"{where}.Id: {value!r} is not an id of {obj.name} "
                                      f"(key prefix {obj.key_prefix})")
                continue
            try:
                values[fdef.name] = validator._converters[fdef.name](value)
            except SalesforceApiError as exc:
                raise SchemaError(f"{where}.{fdef.name}: {exc.error_code}: {exc.message}") from None
        return record_id or self._ids.new_id(obj.key_prefix), values

    def _seed_row(self, obj: ObjectDef, validator: RecordValidator, record_id: str,
                  values: dict[str, Any], now: str) -> None:
        table = _q(obj.name)
        if self._conn.execute(f'SELECT 1 FROM {table} WHERE "Id" = ?', (record_id,)).fetchone():
            if values:  # a row every org has (the admin user): the seed's values win
                sets = ", ".join(f"{_q(c)} = ?" for c in values)
                self._conn.execute(f'UPDATE {table} SET {sets} WHERE "Id" = ?', [*values.values(), record_id])
            return
        row: dict[str, Any] = dict(validator.defaults)
        row.update({"IsDeleted": 0, "CreatedDate": now, "LastModifiedDate": now, "SystemModstamp": now,
                    "CreatedById": ADMIN_USER_ID, "LastModifiedById": ADMIN_USER_ID})
        if obj.field("OwnerId"):
            row["OwnerId"] = ADMIN_USER_ID
        for fdef in obj.fields.values():
            if fdef.auto_number and values.get(fdef.name) is None:
                row[fdef.name] = self._next_auto_number(obj, fdef)
        row.update(values)
        row["Id"] = record_id
        self._fill_computed(obj, row)
        row = {c: v for c, v in row.items() if c in obj.fields}
        cols = list(row)
        self._conn.execute(f"INSERT INTO {table} ({', '.join(map(_q, cols))}) VALUES ({', '.join('?' * len(cols))})",
                           [row[c] for c in cols])

    def _check_seeded_references(self, obj: ObjectDef, record_ids: list[str], source: str) -> None:
        """Every reference of the seeded rows points at a row that exists (seeded or the org's own)."""
        for fdef in obj.fields.values():
            if fdef.type != "reference":
                continue
            targets = " UNION ALL ".join(f'SELECT "Id" FROM {_q(t)}' for t in fdef.reference_to
                                         if self.metadata.get(t) is not None)
            if not targets:
                continue
            for start in range(0, len(record_ids), _CHUNK):
                chunk = record_ids[start:start + _CHUNK]
                dangling = self._conn.execute(
                    f'SELECT "Id", {_q(fdef.name)} FROM {_q(obj.name)} WHERE "Id" IN ({", ".join("?" * len(chunk))}) '
                    f'AND {_q(fdef.name)} IS NOT NULL AND {_q(fdef.name)} NOT IN ({targets})', chunk).fetchone()
                if dangling:
                    index = record_ids.index(dangling[0])
                    raise SchemaError(f"{source}: records.{obj.name}[{index}].{fdef.name}: {dangling[1]} is "
                                      f"neither a seeded record nor one the org has "
                                      f"({', '.join(fdef.reference_to)})")
