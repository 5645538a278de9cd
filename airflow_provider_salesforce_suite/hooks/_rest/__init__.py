"""Helpers behind :class:`~airflow_provider_salesforce_suite.hooks.rest.SalesforceRestHook`."""
