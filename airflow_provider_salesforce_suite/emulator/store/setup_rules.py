"""What the setup rows impose on records, as Salesforce does it.

- A picklist backed by a value-set object (``Opportunity.StageName`` by ``OpportunityStage``,
  ``Case.Status`` by ``CaseStatus`` ...) lists that object's rows in describe, and writing it derives
  fields from the chosen row: ``IsClosed``/``IsWon`` always, ``Probability`` and
  ``ForecastCategoryName`` when the request does not give them, ``Case.ClosedDate`` when it closes.
- ``RecordTypeId`` must name an active record type of the record's own object
  (``INVALID_CROSS_REFERENCE_KEY``); a record created without one gets the object's default.
  describe's ``recordTypeInfos`` follows the ``RecordType`` rows.

The rules read the rows from the database (:meth:`SetupRules.setup_rows_changed` re-reads them
after seeding or loading), so an org loaded with other values gets other rules.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ..errors import SalesforceApiError
from ..metadata import ObjectDef
from ..metadata.describe import MASTER_RECORD_TYPE_ID
from ..metadata.model import RecordTypeInfo
from ..metadata.standard_values import ValueSet, set_picklist, value_sets
from .core import ChangeEvent, StoreBase, _q

#: Per object with backed picklists: (record field, its value set, lower-cased ApiName -> setup row,
#: what each always-derived field gets for a value outside the rows).
_Lookup = tuple[str, ValueSet, dict[str, dict[str, Any]], dict[str, Any]]


class SetupRules(StoreBase):
    """Setup-row rules for record writes, and describe data kept in step with the setup rows."""

    @property
    def _setup_lookups(self) -> dict[str, list[_Lookup]]:
        return self.__dict__.setdefault("_setup_lookups_by_object", {})

    def setup_rows_changed(self) -> None:
        """Re-read the value-set and RecordType rows: picklists, derivation lookups, record types.

        A loader that writes such rows straight into the database (a snapshot's seed data) calls it
        afterwards; the store calls it after seeding and reset.
        """
        with self._lock:
            if not self.__dict__.get("_watching_record_types"):
                self.__dict__["_watching_record_types"] = True
                self.add_listener(self._record_types_written, wants=lambda sobject: sobject == "RecordType")
            lookups: dict[str, list[_Lookup]] = {}
            for value_set in value_sets():
                source = self.metadata.get(value_set.sobject)
                target = self.metadata.get(value_set.target[0]) if value_set.target else None
                fdef = target.field(value_set.target[1]) if target and value_set.target else None
                if source is None or target is None or fdef is None:
                    continue
                rows = self._live_rows(source, order_by="SortOrder")
                set_picklist(fdef, rows)
                by_value = {str(r["ApiName"]).lower(): r for r in rows}
                unknown = {f: 0 if target.fields[f].type == "boolean" else None for f in value_set.always}
                lookups.setdefault(target.name, []).append((fdef.name, value_set, by_value, unknown))
            self.__dict__["_setup_lookups_by_object"] = lookups
            self._validators.clear()  # picklist values and defaults are baked into the converters
            self._sync_record_types()

    def _live_rows(self, obj: ObjectDef, *, order_by: str) -> list[dict[str, Any]]:
        cols = list(obj.fields)
        sql = (f"SELECT {', '.join(map(_q, cols))} FROM {_q(obj.name)} WHERE \"IsDeleted\" = 0 "
               f'ORDER BY {_q(order_by)}, "Id"')
        return [dict(zip(cols, row)) for row in self._conn.execute(sql)]

    # ----------------------------------------------------------------- value sets

    def _derived_fields(self, obj: ObjectDef) -> list[str]:
        """The fields the value sets may write on ``obj``'s records (insert columns)."""
        out: list[str] = []
        for _, value_set, _, _ in self._setup_lookups.get(obj.name, ()):
            out += [*value_set.always, *value_set.fill, *value_set.stamp]
        return out

    def _derive_setup_fields(self, obj: ObjectDef, row: Mapping[str, Any], sent: Collection[str],
                             before: Mapping[str, Any] | None, now: str) -> dict[str, Any]:
        """The fields the chosen setup rows set on a record about to be written.

        :param obj: the record's object.
        :param row: the record's values after the write (stored form).
        :param sent: the fields the request gave.
        :param before: the stored record (``None`` on create).
        :param now: the write's timestamp (for stamps such as ``Case.ClosedDate``).
        """
        out: dict[str, Any] = {}
        for fname, value_set, by_value, unknown in self._setup_lookups.get(obj.name, ()):
            if before is not None and fname not in sent:
                continue  # the picklist is unchanged: so is what it derives
            chosen = by_value.get(str(row.get(fname) or "").lower())
            for target, source in value_set.always.items():
                out[target] = chosen[source] if chosen else unknown[target]
            for target, source in value_set.fill.items():
                if chosen and target not in sent:
                    out[target] = chosen[source]
            for target, flag in value_set.stamp.items():
                was = bool(before.get(flag)) if before else False
                if out.get(flag) and not was:
                    out[target] = now
                elif not out.get(flag):
                    out[target] = None
        return out

    # ----------------------------------------------------------------- record types

    def _record_types_written(self, event: ChangeEvent) -> None:
        self._sync_record_types()

    def _sync_record_types(self) -> None:
        """Every object's :attr:`~..metadata.model.ObjectDef.record_types` from the RecordType rows."""
        by_object = self._read_record_types()
        for obj in self.metadata.objects.values():
            obj.record_types = by_object.get(obj.name, [])

    def _read_record_types(self) -> dict[str, list[RecordTypeInfo]]:
        """Object name -> its record types, as the database holds them now.

        An object's default is its earliest-created active record type (the emulator has no
        per-profile record type assignments).
        """
        by_object: dict[str, list[RecordTypeInfo]] = {}
        record_type = self.metadata.get("RecordType")
        if record_type is None:
            return by_object
        with self._lock:
            rows = self._live_rows(record_type, order_by="CreatedDate")
        for row in rows:
            infos = by_object.setdefault(str(row["SobjectType"]), [])
            active = bool(row["IsActive"])
            default = active and not any(i.default for i in infos)
            infos.append(RecordTypeInfo(row["Id"], row["Name"], row["DeveloperName"], active, default))
        return by_object

    def _check_record_types(self, obj: ObjectDef, rows: list[tuple[int, dict[str, Any]]],
                            failures: dict[int, SalesforceApiError], *, creating: bool) -> None:
        """``RecordTypeId`` names an active record type of ``obj`` (Master is stored as null); a
        create without one gets the object's default."""
        if obj.field("RecordTypeId") is None:
            return
        valid = {rt.id for rt in obj.record_types if rt.active}
        if any(row.get("RecordTypeId") not in valid | {None, MASTER_RECORD_TYPE_ID} for _, row in rows):
            # A RecordType written earlier in an open transaction (a composite request) reaches
            # describe only at the commit: read the rows as they are now before refusing.
            valid = {rt.id for rt in self._read_record_types().get(obj.name, []) if rt.active}
        default = next((rt.id for rt in obj.record_types if rt.default), None)
        for index, row in rows:
            if "RecordTypeId" not in row:
                if creating and default is not None:
                    row["RecordTypeId"] = default
                continue
            value = row["RecordTypeId"]
            if value == MASTER_RECORD_TYPE_ID:
                row["RecordTypeId"] = None
            elif value is not None and value not in valid and index not in failures:
                failures[index] = SalesforceApiError(
                    "INVALID_CROSS_REFERENCE_KEY", f"Record Type ID: this ID value isn't valid for the user: {value}",
                    fields=["RecordTypeId"],
                )
