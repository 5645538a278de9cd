"""The rows a new org has before anyone writes: the Organization, profiles, the admin user, the
standard price book, the default business hours, the sample role hierarchy, the all-users group
and the picklist-value setup objects (``LeadStatus`` ...).

Rows are plain ``(sObject, values)`` pairs with fixed ids, inserted by the store as they are (no
client validation), so a generic record loader can take them as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import ids
from ..metadata.standard_values import value_sets

ORG_ID = ids.to_18("00D000000000001")
ADMIN_USER_ID = ids.to_18("005000000000001")
ADMIN_PROFILE_ID = ids.to_18("00e000000000001")
STANDARD_PROFILE_ID = ids.to_18("00e000000000002")
STANDARD_PRICEBOOK_ID = ids.to_18("01s000000000001")
DEFAULT_BUSINESS_HOURS_ID = ids.to_18("01m000000000001")
ALL_INTERNAL_USERS_GROUP_ID = ids.to_18("00G000000000001")
ADMIN_USERNAME = "admin@emulator.local"
ORG_TIME_ZONE = "America/Los_Angeles"

#: Profiles beyond the two above that a Developer Edition org lists (Setup > Profiles).
_MORE_PROFILES = ("Read Only", "Marketing User", "Contract Manager", "Solution Manager", "Standard Platform User",
                  "Minimum Access - Salesforce")
#: A Developer Edition org's sample role hierarchy: (name, developer name, parent's developer name).
_ROLES = (
    ("CEO", "CEO", None),
    ("CFO", "CFO", "CEO"),
    ("COO", "COO", "CEO"),
    ("SVP, Customer Service & Support", "SVPCustomerServiceSupport", "CEO"),
    ("SVP, Human Resources", "SVPHumanResources", "CEO"),
    ("SVP, Sales & Marketing", "SVPSalesMarketing", "CEO"),
    ("Customer Support, International", "CustomerSupportInternational", "SVPCustomerServiceSupport"),
    ("Customer Support, North America", "CustomerSupportNorthAmerica", "SVPCustomerServiceSupport"),
    ("Installation & Repair Services", "InstallationRepairServices", "SVPCustomerServiceSupport"),
    ("VP, International Sales", "VPInternationalSales", "SVPSalesMarketing"),
    ("VP, Marketing", "VPMarketing", "SVPSalesMarketing"),
    ("VP, North American Sales", "VPNorthAmericanSales", "SVPSalesMarketing"),
    ("Marketing Team", "MarketingTeam", "VPMarketing"),
    ("Director, Channel Sales", "DirectorChannelSales", "VPNorthAmericanSales"),
    ("Director, Direct Sales", "DirectorDirectSales", "VPNorthAmericanSales"),
    ("Channel Sales Team", "ChannelSalesTeam", "DirectorChannelSales"),
    ("Eastern Sales Team", "EasternSalesTeam", "DirectorDirectSales"),
    ("Western Sales Team", "WesternSalesTeam", "DirectorDirectSales"),
)
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def _fixed_id(prefix: str, number: int) -> str:
    # "000000000" after the prefix: never an IdGenerator id, so the store's id counter ignores these.
    return ids.to_18(f"{prefix}{number:012d}")


def _org() -> Iterator[tuple[str, dict[str, Any]]]:
    yield "Organization", {
        "Id": ORG_ID, "Name": "Emulator Org", "OrganizationType": "Developer Edition", "InstanceName": "EMU1",
        "IsSandbox": 0, "DefaultLocaleSidKey": "en_US", "LanguageLocaleKey": "en_US", "TimeZoneSidKey": ORG_TIME_ZONE,
        "Country": "US",
    }
    yield "Profile", {"Id": ADMIN_PROFILE_ID, "Name": "System Administrator", "UserType": "Standard"}
    yield "Profile", {"Id": STANDARD_PROFILE_ID, "Name": "Standard User", "UserType": "Standard"}
    for number, name in enumerate(_MORE_PROFILES, start=3):
        yield "Profile", {"Id": _fixed_id("00e", number), "Name": name, "UserType": "Standard"}
    yield "User", {
        "Id": ADMIN_USER_ID, "Username": ADMIN_USERNAME, "FirstName": "Emulator", "LastName": "Admin",
        "Email": ADMIN_USERNAME, "Alias": "admin", "CommunityNickname": "admin", "IsActive": 1,
        "TimeZoneSidKey": ORG_TIME_ZONE, "LocaleSidKey": "en_US", "EmailEncodingKey": "UTF-8",
        "LanguageLocaleKey": "en_US", "ProfileId": ADMIN_PROFILE_ID, "UserType": "Standard",
        "CompanyName": "Emulator Org",
    }
    yield "Pricebook2", {"Id": STANDARD_PRICEBOOK_ID, "Name": "Standard Price Book", "IsActive": 1, "IsStandard": 1}


def _setup() -> Iterator[tuple[str, dict[str, Any]]]:
    # The default business hours: 24 hours a day, 7 days a week (start = end = midnight), in the org's zone.
    hours: dict[str, Any] = {"Id": DEFAULT_BUSINESS_HOURS_ID, "Name": "Default", "IsActive": 1, "IsDefault": 1,
                             "TimeZoneSidKey": ORG_TIME_ZONE}
    for day in _DAYS:
        hours[f"{day}StartTime"] = hours[f"{day}EndTime"] = "00:00:00.000Z"
    yield "BusinessHours", hours
    yield "Group", {"Id": ALL_INTERNAL_USERS_GROUP_ID, "Name": "All Internal Users",
                    "DeveloperName": "AllInternalUsers", "Type": "Organization"}
    role_ids = {dev: _fixed_id("00E", n) for n, (_, dev, _) in enumerate(_ROLES, start=1)}
    for name, dev, parent in _ROLES:
        yield "UserRole", {"Id": role_ids[dev], "Name": name, "DeveloperName": dev,
                           "ParentRoleId": role_ids[parent] if parent else None, "RollupDescription": name}


def _value_set_rows(prefixes: dict[str, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    for value_set in value_sets():
        prefix = prefixes[value_set.sobject]
        for number, row in enumerate(value_set.rows, start=1):
            yield value_set.sobject, {"Id": _fixed_id(prefix, number),
                                      **{k: int(v) if isinstance(v, bool) else v for k, v in row.items()}}


def default_rows(prefixes: dict[str, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every default row, in insert order (parents first).

    :param prefixes: sObject name -> key prefix (from the metadata), for the value-set objects' ids.
    """
    yield from _org()
    yield from _setup()
    yield from _value_set_rows(prefixes)
