"""A DAG that tries hard to leak secrets: used by tests/test_task_logs_secrets.py only."""

from __future__ import annotations

import logging
from datetime import datetime

from airflow.sdk import dag, task

from airflow_provider_salesforce_suite.core.errors import SalesforceAuthError
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

log = logging.getLogger(__name__)


@dag(dag_id="secrets_probe", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def secrets_probe():
    @task
    def succeeding_task() -> int:
        hook = SalesforceRestHook()
        rows = sum(1 for _ in hook.query("SELECT Id, Username FROM User"))
        token = hook.session.token.access_token
        config = hook.config
        # Careless logging of everything a user might print while debugging.
        log.info("debug: token=%s password=%s secret=%s", token, config.password, config.consumer_secret)
        log.warning("debug: security token %s, config %r", config.security_token, config)
        return rows

    @task
    def failing_task() -> None:
        hook = SalesforceRestHook()
        log.error("about to fail with session %s", hook.session.token.access_token)
        list(hook.query("SELEKT Id FROM Account"))  # our error, with its traceback, reaches the log

    @task
    def echoed_password_task() -> str:
        # The test makes the token endpoint echo the form body (the password URL-encoded) once.
        hook = SalesforceRestHook("salesforce_echo")
        try:
            hook.limits()
        except SalesforceAuthError as exc:
            log.warning("token call failed: %s (%r)", exc, exc)
            return f"caught: {exc} | {exc!r} | {exc.error_description}"  # goes to XCom
        return "no error"

    echoed_password_task() >> succeeding_task() >> failing_task()


secrets_probe()
