"""Helpers of :class:`~airflow_provider_salesforce_suite.hooks.bulk.SalesforceBulkHook`."""
