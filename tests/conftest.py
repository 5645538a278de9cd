pytest_plugins = ["airflow_provider_salesforce_suite.emulator.pytest_plugin"]
