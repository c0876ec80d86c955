"""`bluepulse accounts list|check`: the tracked accounts file, printed or validated.

`check` exits 0 or 2 (a RegistryError naming every bad line), so it can gate a deployment.
"""

from __future__ import annotations

from aggregator.report import render
from bluepulse.config import AccountsConfig
from schemas.accounts import load_accounts

COLUMNS = ["did", "handle", "name", "category", "region", "followers"]


def main(config: AccountsConfig) -> int:
    accounts = load_accounts(config.accounts)
    if config.action == "check":
        print(f"{config.accounts}: {len(accounts)} accounts, OK")
        return 0
    rows = [(a.did, a.handle, a.name, a.category, a.region, a.followers) for a in accounts]
    text = render(COLUMNS, rows, config.format)
    print(text, end="" if text.endswith("\n") else "\n")
    return 0
