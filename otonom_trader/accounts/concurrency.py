"""A Prefect global concurrency limit per account, next to the database lease.

Deployments of one account share the limit ``account-<account id>`` (one slot), so Prefect
itself queues their runs and shows who waits in the UI; the database lease
(``otonom_trader.accounts.lease``) still guards every other way in (a CLI run, the library, a
flow run started by hand, which does not take the Prefect slot: no scheduler to inform). The
limit is created on first use with one slot and then used with ``strict=True``: if it cannot be
found or taken, the run does not trade.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: How long the account's slot stays taken without a renewal. Prefect's client renews the lease
#: while the run holds the slot, so a long cycle keeps it; a run whose process dies (a worker
#: killed mid-cycle) gives it up this long after its last renewal instead of Prefect's default
#: 300 s, so the account's next run is not held back for five minutes. 60 s is the server's
#: minimum.
SLOT_LEASE_SECONDS = 60.0


@dataclass
class AccountSlot:
    """Whether the account's slot was taken, and if not, why."""

    name: str
    acquired: bool = False
    reason: str = ""


def limit_name(account_id: str) -> str:
    """The global concurrency limit of an account."""
    return f"account-{account_id}"


def ensure_account_limit(name: str) -> None:
    """Create the one-slot limit ``name`` unless it exists (a person may have changed it)."""
    ensure_global_limit(name, 1)


def ensure_global_limit(name: str, limit: int, slot_decay_per_second: float | None = None) -> None:
    """Create the global concurrency limit ``name`` (``limit`` slots; with a decay, a rate
    limit) unless one of that name exists, which is kept as it is."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        try:
            create = GlobalConcurrencyLimitCreate(name=name, limit=limit)
            if slot_decay_per_second is not None:  # the API refuses an explicit null
                create.slot_decay_per_second = slot_decay_per_second
            client.create_global_concurrency_limit(create)
        except ObjectAlreadyExists:
            pass  # another run created it between our read and our create: the same limit
        except Exception:  # noqa: BLE001 - the server may report that race as an error too
            client.read_global_concurrency_limit_by_name(name)  # raises if it truly is missing


@contextmanager
def account_concurrency(account_id: str, wait_seconds: float) -> Iterator[AccountSlot]:
    """Hold the account's Prefect concurrency slot for the block (wait up to ``wait_seconds``).

    Yields an ``AccountSlot``; ``acquired`` is False when another run held the slot that long.
    The slot is asked for at once (one request); only when the server says the limit does not
    exist (the account's first run on this server) is it created and asked for again.
    """
    from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
    from prefect.concurrency.sync import concurrency

    slot = AccountSlot(limit_name(account_id))
    for attempt in (1, 2):
        try:
            with concurrency(
                slot.name,
                occupy=1,
                timeout_seconds=wait_seconds,
                lease_duration=SLOT_LEASE_SECONDS,
                strict=True,
            ):
                slot.acquired = True
                yield slot
                return
        except TimeoutError:
            if slot.acquired:
                raise  # raised by the block, not by the wait for the slot
            slot.reason = (
                f"account {account_id}: Prefect concurrency limit {slot.name!r} stayed taken by "
                f"another run for {wait_seconds:.1f} s; ended without trading"
            )
            break
        except ConcurrencySlotAcquisitionError:
            if slot.acquired or attempt == 2:
                raise
            ensure_account_limit(slot.name)
    yield slot
