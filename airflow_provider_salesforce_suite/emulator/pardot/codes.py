"""The Account Engagement (Pardot) error codes the emulator answers with, from Salesforce's registry
(one numbering for API v3, v4 and v5):
https://developer.salesforce.com/docs/marketing/pardot/guide/error-codes.html

Each code below is the registry's entry for that problem; where the registry has several plausible
entries, the choice is marked (and listed as unconfirmed in docs/contract-tests.md).
"""

from __future__ import annotations

INVALID_ACTION = 2  # "Invalid action" (v3/v4)
INVALID_PROSPECT_EMAIL = 4  # "Invalid prospect email address"
#: "One or more required parameters are missing" (which entry v5 uses for a missing ``fields``
#: parameter is not documented: 13 or 36 ("... required parameter values are missing")).
MISSING_REQUIRED_PARAMETER = 13
INVALID_ID = 16  # "Invalid ID": ensure only valid integer values
INVALID_LIMIT = 23  # "Invalid value specified for limit"
INVALID_JSON_OR_XML = 71  # "Input needs to be valid JSON or XML" (v3/v4)
INVALID_JSON = 150  # "Input needs to be valid JSON"
#: "Missing required property in request" (a v5 request body without a required field).
MISSING_REQUIRED_PROPERTY = 153
INVALID_PROPERTY = 154  # "Invalid property in request"
IMPORT_NOT_OPEN = 155  # "Can't update. Import must be in "Open" state."
IMPORT_HAS_NO_DATA = 156  # "Can't start processing. Import has no associated data."
IMPORT_STATE = 161  # "The current state of the import does not allow the operation"
NO_FILE = 162  # "No file was specified or uploaded"
UNKNOWN_PROCEDURE = 174  # "Unknown procedure name."
#: "One or more of the specified fields are invalid": not valid (or not writable) for a create or update.
INVALID_WRITE_FIELDS = 180
#: "Invalid fields for request type": fields that cannot be queried (chosen for unknown names in
#: ``fields`` and filters; not confirmed for that exact case).
INVALID_QUERY_FIELDS = 224
INVALID_PAGE_TOKEN = 211  # "Page token is invalid."
