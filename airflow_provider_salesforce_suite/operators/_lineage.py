"""OpenLineage datasets of the operators (used only when ``apache-airflow-providers-openlineage`` is
installed: every OpenLineage import is inside a function, so importing an operator stays cheap).

Naming. OpenLineage's naming spec has no Salesforce entry, so its general rule applies: the
namespace is the datasource as ``scheme://authority``, the name the dataset's path inside it.

* an sObject: ``salesforce://<instance host>`` + the object's API name (``Account``);
* a CRM Analytics dataset: the same namespace + ``analytics/<dataset API name>``;
* a Pardot object: ``pardot://<Pardot host>`` + ``<business unit id>/<object>`` (``prospect``);
* a file: the spec's file naming (``file`` + path, ``s3://bucket`` + key, ``gs://bucket`` + key,
  else ``scheme://authority`` + path).

Schemas come from the sObject's describe, limited to the fields the task touched; one describe
per object and org per process (cached), none when the task knows no field names.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

log = logging.getLogger(__name__)

#: (instance URL, API version, sObject) -> {field name: Salesforce type}
_DESCRIBES: dict[tuple[str, str, str], dict[str, str]] = {}


# -- names -----------------------------------------------------------------------------------------------
def salesforce_namespace(instance_url: str) -> str:
    """``salesforce://<host[:port]>`` of an org's instance URL.

    :param instance_url: e.g. ``https://acme.my.salesforce.com``.
    """
    return f"salesforce://{urlsplit(instance_url).netloc or instance_url}"


def pardot_namespace(pardot_host: str) -> str:
    """``pardot://<host[:port]>`` of a Pardot API host.

    :param pardot_host: e.g. ``https://pi.pardot.com``.
    """
    return f"pardot://{urlsplit(pardot_host).netloc or pardot_host}"


def file_name(location: Any) -> tuple[str, str]:
    """``(namespace, name)`` of a file location (a URI, a local path or an ``ObjectStoragePath``).

    :param location: where the file is.
    """
    uri = str(location)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("", "file", "local"):
        return "file", parts.path if scheme else uri
    if scheme in ("gs", "gcs"):
        return f"gs://{parts.netloc}", parts.path.lstrip("/")
    if scheme in ("s3", "s3a", "s3n"):
        return f"s3://{parts.netloc}", parts.path.lstrip("/")
    return f"{scheme}://{parts.netloc}", parts.path.lstrip("/") or "/"


_FROM = re.compile(r"\bFROM\s+([A-Za-z_][\w]*)", re.IGNORECASE)


def soql_object_and_fields(soql: str) -> tuple[str | None, list[str]]:
    """The top-level ``FROM`` object of a query and the plain fields of its select list (no parent
    fields, subqueries or functions: those are not fields of that object).

    :param soql: the query.
    """
    from airflow_provider_salesforce_suite.operators._bulk.watermark import _top_level

    clauses = _top_level(soql)
    start = next(((s, e) for s, e, k in clauses if k == "FROM"), None)
    if start is None:
        return None, []
    match = re.match(r"\s*([A-Za-z_]\w*)", soql[start[1]:])
    sobject = match.group(1) if match else None
    select = re.sub(r"^\s*SELECT\s+", "", soql[:start[0]], flags=re.IGNORECASE)
    fields, depth, item = [], 0, ""
    for char in select + ",":
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            name = item.strip()
            if re.fullmatch(r"[A-Za-z_]\w*", name):
                fields.append(name)
            item = ""
        else:
            item += char
    return sobject, fields


# -- describe (cached) -----------------------------------------------------------------------------------
def field_types(hook: SalesforceBaseHook, sobject: str) -> dict[str, str]:
    """``{field: type}`` from the sObject's describe, read once per org and object in this process;
    empty when it cannot be read (lineage never fails a task).

    :param hook: any Salesforce-token hook of the org.
    :param sobject: the object.
    """
    try:
        key = (hook.instance_url, hook.api_version, sobject.lower())
        if key not in _DESCRIBES:
            body = hook.request("GET", hook.data_url(f"sobjects/{sobject}/describe")).json()
            _DESCRIBES[key] = {str(f["name"]): str(f.get("type") or "") for f in body.get("fields") or []}
        return _DESCRIBES[key]
    except Exception as exc:  # a describe the user may not be allowed: lineage without a schema
        log.warning("OpenLineage: no schema for %s (describe failed: %s)", sobject, exc)
        return {}


def _schema_facet(fields: Iterable[str], types: Mapping[str, str] | None = None) -> Any:
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacet, SchemaDatasetFacetFields

    by_lower = {name.lower(): (name, kind) for name, kind in (types or {}).items()}
    out, seen = [], set()
    for field in fields:
        name, kind = by_lower.get(str(field).lower(), (str(field), None))
        if name.lower() in seen or name.startswith("sf__"):
            continue
        seen.add(name.lower())
        out.append(SchemaDatasetFacetFields(name=name, type=kind or None))
    return SchemaDatasetFacet(fields=out) if out else None


# -- datasets --------------------------------------------------------------------------------------------
def dataset(namespace: str, name: str, *, output: bool | None = None, fields: Sequence[str] = (),
            types: Mapping[str, str] | None = None, rows: int | None = None) -> Any:
    """An OpenLineage dataset (``InputDataset``/``OutputDataset`` when ``output`` is given) with a
    schema facet of ``fields`` (typed from ``types``) and, when ``rows`` is known, the row count.

    :param namespace: the datasource.
    :param name: the dataset within it.
    :param output: True: an output dataset; False: an input dataset; None: a plain dataset.
    :param fields: the columns the task read or wrote.
    :param types: ``{field: Salesforce type}`` from describe.
    :param rows: rows read (input) or written (output).
    """
    from openlineage.client.generated.base import Dataset, InputDataset, OutputDataset

    facets: dict[str, Any] = {}
    schema = _schema_facet(fields, types)
    if schema is not None:
        facets["schema"] = schema
    if output is None:
        return Dataset(namespace=namespace, name=name, facets=facets)
    if output:
        extra: dict[str, Any] = {}
        if rows is not None:
            from openlineage.client.generated.output_statistics_output_dataset import (
                OutputStatisticsOutputDatasetFacet,
            )

            extra["outputStatistics"] = OutputStatisticsOutputDatasetFacet(rowCount=int(rows))
        return OutputDataset(namespace=namespace, name=name, facets=facets, outputFacets=extra)
    extra = {}
    if rows is not None:
        from openlineage.client.generated.input_statistics_input_dataset import InputStatisticsInputDatasetFacet

        extra["inputStatistics"] = InputStatisticsInputDatasetFacet(rowCount=int(rows))
    return InputDataset(namespace=namespace, name=name, facets=facets, inputFacets=extra)


def org_hook(operator: Any) -> SalesforceBaseHook:
    """A hook of the operator's org for lineage only, kept on the operator. Not the operator's own
    hook: the OpenLineage listener may run in a forked process, which must not share the task's
    open connections. Use it on COMPLETE only: by then the token cache (inherited by the fork)
    holds the task's token, so lineage logs in no second time. On START the task has not logged
    in yet, and a login from the forked process could even rotate a refresh token under the task.

    :param operator: an operator with ``salesforce_conn_id`` (and ``api_version``).
    """
    hook = getattr(operator, "_lineage_hook", None)
    if hook is None:
        from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

        hook = SalesforceBaseHook(operator.salesforce_conn_id, api_version=getattr(operator, "api_version", None))
        operator._lineage_hook = hook
    return hook


def sobject_dataset(hook: SalesforceBaseHook, sobject: str, fields: Sequence[str] = (), *,
                    output: bool | None = None, rows: int | None = None, describe: bool = True) -> Any:
    """An sObject as a dataset of the hook's org, its schema the ``fields`` typed by describe (no
    describe when ``fields`` is empty or ``describe`` is False).

    :param hook: a Salesforce-token hook of the org.
    :param sobject: the object.
    :param fields: the fields the task read or wrote.
    :param output: see :func:`dataset`.
    :param rows: see :func:`dataset`.
    :param describe: type the fields from the object's describe (cached).
    """
    types = field_types(hook, sobject) if fields and describe else None
    return dataset(salesforce_namespace(hook.instance_url), sobject, output=output, fields=fields, types=types,
                   rows=rows)


def file_dataset(location: Any, fields: Sequence[str] = (), *, output: bool | None = None,
                 rows: int | None = None, types: Mapping[str, str] | None = None) -> Any:
    """A file as a dataset (see :func:`file_name`).

    :param location: URI, path or ``ObjectStoragePath``.
    :param fields: its columns.
    :param output: see :func:`dataset`.
    :param rows: see :func:`dataset`.
    :param types: column types when known (e.g. the Salesforce types of an extract's columns).
    """
    namespace, name = file_name(location)
    return dataset(namespace, name, output=output, fields=fields, types=types, rows=rows)


def file_columns(location: Any, format: str | None = None) -> list[str]:
    """The column names of a file (its first record's keys; a CSV's header): one record read, never
    the whole file. Empty when it cannot be read.

    :param location: URI, path or ``ObjectStoragePath``.
    :param format: the format when the suffix does not tell.
    """
    try:
        from airflow_provider_salesforce_suite.io import iter_records

        first = next(iter(iter_records(location, format=format)), None)
        return [str(key) for key in first] if isinstance(first, Mapping) else []
    except Exception as exc:
        log.warning("OpenLineage: cannot read the columns of %s: %s", location, exc)
        return []


def operator_lineage(inputs: Sequence[Any] = (), outputs: Sequence[Any] = ()) -> Any:
    """The ``OperatorLineage`` the OpenLineage provider reads.

    :param inputs: input datasets.
    :param outputs: output datasets.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(inputs=list(inputs), outputs=list(outputs))


def task_result(operator: Any, task_instance: Any = None) -> Any:
    """What the task returned, as the operator kept it on itself (a Bulk operator's collected
    summary, else ``_lineage_result``), or None.

    Not read back from XCom: the OpenLineage listener runs in a forked process, where a call
    to the XCom backend (the supervisor, or ``dag.test()``'s in-process one) can hang.

    :param operator: the operator.
    :param task_instance: the task instance the OpenLineage listener passes (unused).
    """
    collected = getattr(operator, "_collected", None)
    if collected is not None:
        return collected[1]
    return getattr(operator, "_lineage_result", None)


# -- the shapes the operators share ----------------------------------------------------------------------
def row_count(result: Any, *keys: str) -> int | None:
    """The sum of ``keys`` of a task result, or None when it has none of them."""
    if not isinstance(result, Mapping) or not any(result.get(key) is not None for key in keys):
        return None
    return sum(int(result.get(key) or 0) for key in keys)


def query_to_file(operator: Any, soql: str, output_uri: Any, result: Any = None, *, complete: bool) -> Any:
    """A SOQL extract: the queried sObject (input) -> the file (output, when the task writes one).

    :param operator: the operator (``salesforce_conn_id``, ``api_version``).
    :param soql: the query.
    :param output_uri: the file written, or None (rows to XCom).
    :param result: the task's return value (``records`` or ``rows``, ``columns``) when complete.
    :param complete: the task finished: the sObject too (its org's namespace needs the instance
        URL, known once the task has logged in; see :func:`org_hook`), row counts, schemas.
    """
    sobject, fields = soql_object_and_fields(soql)
    rows = row_count(result, "records" if isinstance(result, Mapping) and "records" in result else "rows")
    inputs, outputs = [], []
    if sobject and complete:
        inputs.append(sobject_dataset(org_hook(operator), sobject, fields, output=False, rows=rows))
    if output_uri:
        columns = list(result.get("columns") or fields) if isinstance(result, Mapping) else fields
        types = field_types(org_hook(operator), sobject) if complete and sobject and columns else None
        outputs.append(file_dataset(output_uri, columns, output=True, rows=rows, types=types))
    return operator_lineage(inputs, outputs)


def records_columns(source: Any, records: Any, source_format: str | None = None) -> list[str]:
    """The columns of a load's input: a file's first record, or the first dict of ``records``.

    :param source: the input file, or None.
    :param records: the input records (a list), when no file.
    :param source_format: the file's format when its suffix does not tell.
    """
    if source is not None:
        return file_columns(source, source_format)
    if isinstance(records, Sequence) and records and isinstance(records[0], Mapping):
        return [str(key) for key in records[0]]
    return []


def file_to_sobject(operator: Any, sobject: str, source: Any, records: Any, source_format: str | None = None,
                    rows: int | None = None, *, complete: bool) -> Any:
    """A load: the input file (when there is one) -> the sObject, with the fields loaded.

    :param operator: the operator (``salesforce_conn_id``, ``api_version``).
    :param sobject: the object loaded.
    :param source: the input file, or None (``records`` from XCom).
    :param records: the input records when no file.
    :param source_format: the file's format when its suffix does not tell.
    :param rows: records written to Salesforce, when complete.
    :param complete: the task finished: the sObject too (see :func:`query_to_file`), row
        counts, schemas.
    """
    columns = records_columns(source, records, source_format) if complete else []
    inputs = [file_dataset(source, columns, output=False)] if source is not None else []
    outputs = [sobject_dataset(org_hook(operator), sobject, columns, output=True, rows=rows)] if complete else []
    return operator_lineage(inputs, outputs)


def load_facets(operator: Any, rows_key: str | None) -> Any:
    """:func:`file_to_sobject` for a load operator (``sobject``, ``source``, ``records``,
    ``source_format``): on start without ``rows_key``, on complete with the key of its result
    that counts the records written.

    :param operator: the operator.
    :param rows_key: e.g. ``processed``; None on start.
    """
    result = task_result(operator) if rows_key else None
    rows = result.get(rows_key) if isinstance(result, Mapping) and rows_key else None
    return file_to_sobject(operator, operator.sobject, operator.source, operator.records, operator.source_format,
                           rows, complete=rows_key is not None)
