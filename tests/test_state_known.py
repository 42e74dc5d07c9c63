"""StateStore.load_known decoding a batch of rows at once equals decoding them one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsg_sync import state
from bsg_sync.models import Contact
from bsg_sync.state import StateStore


def test_load_known_equals_the_row_by_row_decode(tmp_path: Path) -> None:
    contacts = [Contact(100 + n, f"4477009{n:05d}", {11: f"Ann {n}", 12: "Köln ☃ \u2028"}
                        if n % 3 else {}, frozenset({1, 2}) if n % 2 else frozenset(),
                        "active" if n % 5 == 0 else None) for n in range(1200)]
    with StateStore(tmp_path / "s.db") as store:
        store.save_seen(contacts)
        store.record_written(Contact(105, "447700900105", {11: "written"}, frozenset({3})))
        rows = store._query("SELECT id, phone, fields, groups, hlr_status, hlr_last_check, "
                            "written FROM contacts")
        want = {r[0]: state._known_from_row(r) for r in rows}
        assert store.load_known() == want
        ids = [100 + n for n in range(0, 1200, 2)] + [5]  # more than one chunk; 5 unknown
        assert store.load_known(ids) == {i: want[i] for i in ids if i in want}
        assert store.load_known([105])[105].written is not None
        # the order asked for, each contact once (a sheet's order: the plan compares whole
        # columns when the book is in it), across chunks
        asked = [1199, 107, 5, 103, 107, 101, *range(100, 1100)]
        assert list(store.load_known(asked)) == list(dict.fromkeys(
            i for i in asked if i in want))


OBJECT = st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=3).map(
    lambda d: json.dumps(d, ensure_ascii=False, separators=(",", ":")))
ODD = st.sampled_from(['{"a":"}', '1,2', '{"b":1},{"c":2}', '{', '}', '', '[]', ' {}', '{"d":',
                       '3}', 'null', '{"e":"},{"f":"}', '{},{}', '{"}', '{} ', '\n{}', '"x"'])


@settings(max_examples=300, deadline=None)
@given(st.lists(OBJECT | ODD, max_size=5))
def test_fields_of_rows_is_json_loads_of_each(texts: list[str]) -> None:
    # e.g. ['{"a":"}', '{"}', '{},{}'] reads as three objects when joined into one array
    try:
        want = [json.loads(t) for t in texts]
    except ValueError as exc:
        with pytest.raises(type(exc)):
            state._fields_of_rows(texts)
        return
    assert state._fields_of_rows(texts) == want
