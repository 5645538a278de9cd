"""Routes of the REST query, search and org resources (merged into :mod:`.routes`' table)."""

from __future__ import annotations

from . import approvals, blobs, listviews, org, quickactions, search


def search_org_routes(*, sobject_scoped: bool = False) -> list[tuple[str, dict]]:
    """``(path, {METHOD: handler})`` rows, relative to ``/services/data/vXX.X``.

    :param sobject_scoped: the ``/sobjects/{sobject}/...`` rows, which must precede the generic
        record and external-id routes they would otherwise be shadowed by.
    """
    if sobject_scoped:
        return [
            ("/sobjects/{sobject}/updated", {"GET": org.updated}),
            ("/sobjects/{sobject}/deleted", {"GET": org.deleted}),
            ("/sobjects/{sobject}/listviews", {"GET": listviews.list_views}),
            ("/sobjects/{sobject}/listviews/{list_view_id}", {"GET": listviews.list_view}),
            ("/sobjects/{sobject}/listviews/{list_view_id}/describe", {"GET": listviews.describe_list_view}),
            ("/sobjects/{sobject}/listviews/{list_view_id}/results", {"GET": listviews.list_view_results}),
            ("/sobjects/{sobject}/quickActions", {"GET": quickactions.list_actions}),
            ("/sobjects/{sobject}/quickActions/{action}", {"GET": quickactions.action, "POST": quickactions.action}),
            ("/sobjects/{sobject}/quickActions/{action}/describe", {"GET": quickactions.describe_action}),
            ("/sobjects/User/{user_id}/password", {m: org.password for m in ("GET", "POST", "DELETE")}),
            ("/sobjects/{sobject}/{record_id}/{blob_field:" + blobs.BLOB_FIELDS + "}", {"GET": blobs.blob}),
        ]
    return [
        ("/query", {"GET": search.query}),
        ("/search", {"GET": search.search}),
        ("/parameterizedSearch", {"GET": search.parameterized_search, "POST": search.parameterized_search}),
        ("/limits/recordCount", {"GET": org.record_counts}),
        ("/recent", {"GET": org.recent}),
        ("/quickActions", {"GET": quickactions.list_actions}),
        ("/quickActions/{action}", {"GET": quickactions.action, "POST": quickactions.action}),
        ("/quickActions/{action}/describe", {"GET": quickactions.describe_action}),
        ("/process/approvals", {"GET": approvals.approvals, "POST": approvals.submit}),
        ("/process/rules", {"GET": org.process_rules, "POST": org.trigger_process_rules}),
        ("/process/rules/{sobject}", {"GET": org.process_rules}),
    ]
