"""Bring the known state of the sheet's contacts up to date, choosing the cheaper way to ask BSG."""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bsg_sync.client import BsgClient
from bsg_sync.models import Account, Contact, Desired, DesiredRows, KnownBook
from bsg_sync.state import StateStore

log = logging.getLogger(__name__)

PAGE = 500  # contacts per list page (the API's maximum)
COLD_GET_LIMIT = 5  # without a snapshot, this many GETs are tried before counting the book
GET_WORKERS = 4  # parallel GETs when refreshing contact by contact, and list pages


@dataclass
class RefreshStats:
    """Requests the refresh made, and which way it chose ("get", "list" or "none")."""

    gets: int = 0
    list_pages: int = 0
    searches: int = 0
    strategy: str = "none"
    counts: int = 0


@dataclass
class _Live:
    """What this refresh saw in BSG."""

    contacts: dict[int, Contact]
    by_phone: dict[str, int]  # only filled by a full listing
    stats: RefreshStats
    listed: bool = False  # the whole book was listed: a phone not in it has no contact


def refresh_known(client: BsgClient, store: StateStore, desired: Sequence[Desired],
                  stats: RefreshStats | None = None) -> tuple[DesiredRows, KnownBook]:
    """Resolve phones to ids, fetch the live state of exactly the referenced contacts, save it.

    Returns the rows with `contact_id` filled where a contact was found, the known state (live
    seen + what we last wrote) of those contacts. Contacts BSG no longer has are dropped from
    the snapshot and are absent from `known`. The requests made are logged, and copied into
    `stats` when one is given.
    """
    rows = DesiredRows.of(desired)
    phones = _unplaced_phones(rows)
    snapshot = store.ids_by_phone(phones) if phones else {}
    ids = {cid for cid in rows.contact_ids() if cid is not None} | set(snapshot.values())
    # each phone the snapshot cannot place costs a search, unless the whole book is listed
    live = _fetch(client, store, ids, searches=len(phones - snapshot.keys()),
                  stats=stats if stats is not None else RefreshStats())
    resolved = _resolve_phones(client, phones, snapshot, live)
    store.save_seen(live.contacts.values())
    gone = ids - live.contacts.keys()
    if gone:
        store.forget_contacts(gone)
    rows = rows.with_ids(resolved)
    log.info("refresh: %s", live.stats)
    return rows, store.load_known(_in_sheet_order(rows, live.contacts.keys()))


def _in_sheet_order(rows: DesiredRows, among: Collection[int] | None = None) -> Iterator[int]:
    """The rows' contact ids (among these) in the order of the rows, repeats included:
    StateStore.load_known keeps each at its first, so the book comes back in the sheet's
    order."""
    ids = (cid for cid in rows.contact_ids() if cid is not None)
    return ids if among is None else (cid for cid in ids if cid in among)


def _unplaced_phones(rows: DesiredRows) -> set[str]:
    """The phones of the rows that give no contact id."""
    return {phone for cid, phone in zip(rows.contact_ids(), rows.phones(), strict=True)
            if cid is None and phone}


def _fetch(client: BsgClient, store: StateStore, ids: Collection[int], *, searches: int,
           stats: RefreshStats) -> _Live:
    """Per-contact requests (a GET per id, a search per unplaced phone) or the paged list."""
    one_by_one = len(ids) + searches
    if one_by_one == 0:
        return _Live({}, {}, stats)
    estimate = store.count_contacts()
    if _gets_are_cheaper(one_by_one, estimate):
        return _fetch_by_get(client, ids, stats)
    total = client.count_contacts()
    stats.counts = 1
    if one_by_one <= math.ceil(total / PAGE):
        return _fetch_by_get(client, ids, stats)
    return _fetch_by_list(client, stats)


def _gets_are_cheaper(n: int, snapshot_size: int) -> bool:
    """Decide without counting when the answer is clear (counting costs a request too)."""
    if snapshot_size == 0:
        return n <= COLD_GET_LIMIT
    return n <= 1 + math.ceil(snapshot_size / PAGE)


def _fetch_by_get(client: BsgClient, ids: Collection[int], stats: RefreshStats) -> _Live:
    stats.strategy = "get"
    stats.gets = len(ids)
    if not ids:
        return _Live({}, {}, stats)
    with ThreadPoolExecutor(max_workers=min(GET_WORKERS, len(ids))) as pool:
        found = list(pool.map(client.get_contact, sorted(ids)))
    return _Live({c.id: c for c in found if c is not None}, {}, stats)


def _fetch_by_list(client: BsgClient, stats: RefreshStats) -> _Live:
    stats.strategy = "list"
    everyone = list(client.iter_contacts(page_limit=PAGE, workers=GET_WORKERS))
    stats.list_pages = max(1, math.ceil(len(everyone) / PAGE))
    # The whole book went past anyway: all of it refreshes the snapshot and resolves phones.
    return _Live({c.id: c for c in everyone}, {c.phone: c.id for c in everyone}, stats,
                 listed=True)


def _resolve_phones(client: BsgClient, phones: Iterable[str], snapshot: dict[str, int],
                    live: _Live) -> dict[str, int]:
    """Phone -> live contact id: snapshot match confirmed live, else the listing, else search."""
    resolved: dict[str, int] = {}
    for phone in sorted(phones):
        cid = snapshot.get(phone)
        contact = live.contacts.get(cid) if cid is not None else None
        if contact is not None and contact.phone == phone:
            resolved[phone] = contact.id
        elif phone in live.by_phone:
            resolved[phone] = live.by_phone[phone]
        elif not live.listed:
            live.stats.searches += 1
            found = client.find_by_phone(phone)
            if found is not None:
                live.contacts[found.id] = found
                resolved[phone] = found.id
    return resolved


def resolve_offline(store: StateStore, desired: Sequence[Desired]
                    ) -> tuple[DesiredRows, KnownBook]:
    """--offline: resolve phones and read known state from the snapshot alone (no requests)."""
    rows = DesiredRows.of(desired)
    phones = _unplaced_phones(rows)
    rows = rows.with_ids(store.ids_by_phone(phones) if phones else {})
    return rows, store.load_known(_in_sheet_order(rows))


def load_account(client: BsgClient) -> Account:
    """The account's custom fields and lists."""
    return Account(tuple(client.list_fields()), tuple(client.list_groups()))


def pull_all(client: BsgClient, store: StateStore) -> tuple[int, Account]:
    """Snapshot the whole book, fields and lists; forget contacts BSG no longer has."""
    account = load_account(client)
    seen: set[int] = set()

    def contacts() -> Iterable[Contact]:
        for c in client.iter_contacts(page_limit=PAGE, workers=GET_WORKERS):
            seen.add(c.id)
            yield c

    count = store.save_seen(contacts())
    store.forget_contacts(store.contact_ids() - seen)
    store.save_account(account)
    return count, account
