"""Small pages at the paths of Salesforce's UI that the provider's extra links open (the Bulk
job page, a record page, a CRM Analytics dataset): they say which job, record or dataset it is,
so a link of a run against the emulator resolves to something."""
