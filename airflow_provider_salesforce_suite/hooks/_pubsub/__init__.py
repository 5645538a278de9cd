"""Pub/Sub API (gRPC) client parts behind :mod:`~airflow_provider_salesforce_suite.hooks.pubsub`."""
