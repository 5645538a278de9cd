"""The CRM Analytics (Wave) REST API emulation: ``/services/data/vXX.X/wave`` plus the
``InsightsExternalData`` upload objects, a SAQL subset and dataflow jobs."""
