"""Helpers of the Bulk operators (incremental-extract watermarks)."""
