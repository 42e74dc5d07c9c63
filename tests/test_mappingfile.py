"""The mapping file's one writer (shared by `init` and the web form) and `init_mapping`."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsg_sync import mapping, mappingfile
from bsg_sync.errors import UsageError
from bsg_sync.mappingfile import MappingDraft, init_mapping, parse_mapping, render_mapping
from bsg_sync.models import Account, Field
from bsg_sync.web import forms

TARGETS = st.sampled_from(["id", "phone", "groups", "field:City", "field:Ünïcode \"q\""])
HEADERS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1,
                  max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(HEADERS, st.tuples(TARGETS, st.booleans()), max_size=5),
       st.lists(HEADERS, max_size=3), st.none() | st.sampled_from(["GB", "DE"]),
       st.sampled_from(["add", "exact"]), st.none() | st.integers(1, 50))
def test_what_is_rendered_is_what_is_read_back(
    columns: dict[str, tuple[str, bool]], unmapped: list[str], country: str | None,
    groups: str, header_row: int | None,
) -> None:
    draft = MappingDraft(tuple((h, t, c) for h, (t, c) in columns.items()), tuple(unmapped),
                         country, groups, header_row)
    raw = parse_mapping(render_mapping(draft))
    assert raw.problems == ()
    assert raw.columns == {h: t for h, (t, _c) in columns.items()}
    assert raw.blanks == {h: "clear" for h, (_t, c) in columns.items() if c}
    want: dict[str, object] = {"blank": "keep", "groups": groups}
    want |= {"default_country": country} if country else {}
    want |= {"header_row": header_row} if header_row is not None else {}
    assert raw.options == want


ACCOUNT = Account(fields=(Field(1, "City"),))


def test_the_web_form_and_init_write_through_the_same_renderer() -> None:
    headers = ["Mobile", "City", "Notes"]
    text, unmapped = mappingfile.generate_mapping(headers, ACCOUNT, default_country="GB")
    form = forms.prefill(headers, ACCOUNT, None)
    web = forms.to_toml(form)
    assert web.startswith(mappingfile.WEB_INTRO)
    body = text.split("[columns]", 1)[1]
    # the same choices give the same table (the web page lists no unmapped columns)
    assert parse_mapping(web).columns == parse_mapping(text).columns
    assert '"Mobile" = "phone"' in body and '"Mobile" = "phone"' in web
    assert unmapped == ["Notes"]


def test_init_mapping_writes_the_file_and_says_what_it_guessed(tmp_path: Path) -> None:
    sheet = tmp_path / "people.csv"
    sheet.write_text("Sign-ups May\n\nMobile,City,Notes\n07700 900123,Leeds,x\n", "utf-8")
    target = tmp_path / "bsg-sync.toml"
    done = init_mapping(sheet, target, default_country="GB", load_account=lambda: ACCOUNT)
    assert done.guessed == {"Mobile": "phone", "City": "field:City"}
    assert done.draft.unmapped == ("Notes",) and done.header_row == 3 and done.online
    assert done.names_a_contact
    raw = parse_mapping(target.read_text("utf-8"))
    assert raw.columns == done.guessed and raw.options["header_row"] == 3
    with pytest.raises(UsageError, match="already exists; pass --force"):
        init_mapping(sheet, target)
    offline = init_mapping(sheet, target, force=True)
    assert offline.guessed == {"Mobile": "phone"} and not offline.online
    assert mapping.init_mapping is init_mapping  # the rows module re-exports the file's API
