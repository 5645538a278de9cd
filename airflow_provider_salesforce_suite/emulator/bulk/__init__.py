"""The Bulk API 1.0 (``/services/async``) and 2.0 (``/services/data/vXX.X/jobs``) emulation."""
