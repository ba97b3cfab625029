"""Accounts: the identity of each executing venue's balances, and one writer per account.

``Account`` names the balances a book trades (venue, environment, endpoint, label, key
fingerprint); ``AccountLease`` lets one cycle at a time trade an account; ``register_account``
records accounts and carries the pre-accounts ``broker`` book over to the account it traded.
"""

from otonom_trader.accounts.identity import PAPER_ACCOUNT_ID, Account, key_fingerprint
from otonom_trader.accounts.lease import AccountBusyError, AccountLease, LeaseHolder
from otonom_trader.accounts.registry import list_accounts, register_account

__all__ = [
    "PAPER_ACCOUNT_ID",
    "Account",
    "AccountBusyError",
    "AccountLease",
    "LeaseHolder",
    "key_fingerprint",
    "list_accounts",
    "register_account",
]
