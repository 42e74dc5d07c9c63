"""Writes the sample sheets, their mappings and the emulator seed (deterministic).

Run from the repository root: `.venv/bin/python sample_sheets/make_samples.py`.
Every sheet, synced once against a fresh emulator seeded with seed.json, leaves nothing to
change for a second sync: values are plain strings and dates are YYYY-MM-DD.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import phonenumbers

HERE = Path(__file__).resolve().parent
FIXED_TIME = (2026, 3, 1, 9, 0, 0)

FIELDS = [
    (387714, "First name", "text"),
    (387715, "Last name", "text"),
    (387716, "City", "text"),
    (387717, "Birthday", "date"),
    (387718, "Plan", "text"),
    (387719, "Customer since", "date"),
    (387720, "Customer no", "text"),
]
F_FIRST, F_LAST, F_CITY, F_BIRTHDAY, F_PLAN, F_SINCE, F_CUSTNO = (f[0] for f in FIELDS)
GROUPS = [(1864618, "Newsletter"), (1864619, "VIP"), (1864620, "Leeds store"),
          (1864621, "Spring promo")]
GROUP_NAME = dict(GROUPS)
NEWSLETTER, VIP, LEEDS, SPRING = (g[0] for g in GROUPS)

# country -> (count, phone prefix digits, digits to add, first names, last names, cities)
PEOPLE = {
    "GB": (18, "447", 9, ["Oliver", "Amelia", "Harry", "Isla", "Jack", "Sophie", "Noah",
                          "Grace", "George", "Freya", "Priya", "Mohammed", "Ella", "Tom"],
           ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Walker", "Hughes"],
           ["London", "Leeds", "Manchester", "Bristol", "York"]),
    "DE": (8, "4915", 9, ["Lukas", "Mia", "Jonas", "Lea", "Felix", "Jürgen"],
           ["Müller", "Schmidt", "Schneider", "Fischer", "Weber"],
           ["Berlin", "München", "Köln", "Hamburg"]),
    "FR": (8, "336", 8, ["Léa", "Hugo", "Chloé", "Louis", "Zoë", "Théo", "Camille",
                         "Manon"],
           ["Martin", "Bernard", "Dubois", "Lefèvre", "Moreau"],
           ["Paris", "Lyon", "Marseille", "Nantes"]),
    "ES": (14, "346", 8, ["Lucía", "Mateo", "Martina", "José", "Sofía", "Álvaro", "Zoë",
                          "Carmen", "Pablo", "Elena", "Javier", "Nuria"],
           ["García", "Martínez", "López", "Sánchez", "Pérez", "Gómez"],
           ["Madrid", "Málaga", "Sevilla", "Valencia", "Córdoba"]),
    "UA": (6, "38067", 7, ["Olena", "Andrii", "Iryna", "Taras"],
           ["Kovalenko", "Shevchenko", "Bondarenko", "Melnyk"],
           ["Kyiv", "Lviv", "Odesa"]),
    "US": (6, "1", 10, ["Emma", "Liam", "Olivia", "Ethan"],
           ["Johnson", "Miller", "Davis", "Garcia"],
           ["New York", "Chicago", "Austin", "Seattle"]),
}
PLANS = ["Basic", "Plus", "Pro"]
MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE,
                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
HLR = ["active"] * 6 + ["absent", "unknown", "failed"]


@dataclass
class Person:
    id: int
    country: str
    phone: str  # international digits
    fields: dict[int, str]
    groups: list[int]
    hlr_status: str
    hlr_last_check: str | None


def valid_phone(rng: random.Random, country: str, prefix: str, extra: int, used: set[str]) -> str:
    """A number phonenumbers considers valid for `country` (retries with the same rng)."""
    while True:
        digits = prefix + "".join(str(rng.randrange(10)) for _ in range(extra))
        if country == "US" and digits[4:7] == "555":
            continue
        number = phonenumbers.parse("+" + digits)
        mobile = phonenumbers.number_type(number) in MOBILE_TYPES
        valid = phonenumbers.is_valid_number_for_region(number, country)
        if digits not in used and mobile and valid:
            used.add(digits)
            return digits


def make_people(rng: random.Random) -> list[Person]:
    people: list[Person] = []
    used: set[str] = set()
    next_id = 248400001
    for country, (count, prefix, extra, firsts, lasts, cities) in PEOPLE.items():
        for _ in range(count):
            people.append(make_person(rng, next_id, country, prefix, extra, used,
                                      (firsts, lasts, cities)))
            next_id += 1
    return people


def make_person(rng: random.Random, pid: int, country: str, prefix: str, extra: int,
                used: set[str], names: tuple[list[str], list[str], list[str]]) -> Person:
    firsts, lasts, cities = names
    since = dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(2200))
    fields = {
        F_FIRST: rng.choice(firsts),
        F_LAST: rng.choice(lasts),
        F_CITY: rng.choice(cities),
        F_PLAN: rng.choice(PLANS),
        F_SINCE: since.isoformat(),
        F_CUSTNO: f"{pid - 248400000 + 120:06d}",
    }
    if rng.random() < 0.7:
        birthday = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(16000))
        fields[F_BIRTHDAY] = birthday.isoformat()
    groups = sorted(g for g, p in ((NEWSLETTER, 0.7), (VIP, 0.2), (LEEDS, 0.15),
                                   (SPRING, 0.25)) if rng.random() < p)
    hlr = rng.choice(HLR)
    checked = None if hlr == "unknown" else (
        f"2026-02-{rng.randrange(1, 28):02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}:00")
    phone = valid_phone(rng, country, prefix, extra, used)
    return Person(pid, country, phone, fields, groups, hlr, checked)


def seed_json(people: list[Person]) -> str:
    doc = {
        "fields": [{"id": i, "name": n, "type": t} for i, n, t in FIELDS],
        "groups": [{"id": i, "name": n} for i, n in GROUPS],
        "contacts": [
            {"id": p.id, "phone": int(p.phone),
             "fields": {str(k): v for k, v in sorted(p.fields.items())},
             "groups": p.groups, "created_at": f"{p.fields[F_SINCE]} 10:00:00",
             "hlr_status": p.hlr_status, "hlr_last_check": p.hlr_last_check}
            for p in people
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def shown_phone(p: Person, style: int, national_ok: bool) -> str:
    """The phone as a person typed it: national, spaced international, E.164 or bare digits."""
    number = phonenumbers.parse("+" + p.phone)
    if style == 0 and national_ok:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    if style == 1:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if style == 2:
        return "+" + p.phone
    return p.phone if national_ok else "+" + p.phone


def list_names(groups: list[int]) -> str:
    return "; ".join(GROUP_NAME[g] for g in groups)


def plus_one_list(groups: list[int]) -> list[int]:
    """The contact's lists and one more it is not in yet (a change the sync must send)."""
    extra = next(g for g in (SPRING, NEWSLETTER, VIP, LEEDS) if g not in groups)
    return sorted({*groups, extra})


# --------------------------------------------------------------------------- contacts.csv


def contacts_rows(people: list[Person], rng: random.Random) -> list[list[str]]:
    """The export a marketer edited: ~10 changes, bad phones, a duplicate, a blank row."""
    chosen = people[:40]
    rows = [[str(p.id), shown_phone(p, i % 4, p.country == "GB"), p.fields[F_FIRST],
             p.fields[F_CITY], p.fields[F_PLAN], list_names(p.groups)]
            for i, p in enumerate(chosen)]
    rows[2][3] = "Leeds" if rows[2][3] != "Leeds" else "York"  # moved
    rows[5][4] = "Pro" if rows[5][4] != "Pro" else "Plus"  # upgraded
    rows[7][5] = list_names(sorted({*chosen[7].groups, VIP}))  # now VIP
    rows[9][2] = "Amelie" if rows[9][2] != "Amelie" else "Amelia"  # name fixed
    rows[11][4] = ""  # plan cancelled: the mapping clears Plan on a blank cell
    rows[14][3] = "Hamburg" if rows[14][3] != "Hamburg" else "Berlin"
    rows[17][5] = list_names(sorted({*chosen[17].groups, SPRING}))
    rows[20][1] = "+" + valid_phone(rng, "DE", "4917", 8, {p.phone for p in people})  # new phone
    rows[23][3] = "Nice" if rows[23][3] != "Nice" else "Lyon"
    rows[26][4] = "Basic" if rows[26][4] != "Basic" else "Plus"
    rows[29][5] = list_names(sorted({*chosen[29].groups, LEEDS}))
    rows[4][1] = "4.47712E+11"  # Excel ate the digits
    rows[12][1] = "07700 90"  # too short
    rows.insert(31, ["", "", "", "", "", ""])  # a blank line
    rows.insert(35, list(rows[33]))  # the same row pasted twice
    rows.append(["", "+44 7700 900461", "Priya", "Leeds", "Basic", "Newsletter"])  # not in BSG
    return rows


def write_contacts(people: list[Person], rng: random.Random) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Contact ID", "Mobile", "First name", "City", "Plan", "Lists"])
    writer.writerows(contacts_rows(people, rng))
    (HERE / "contacts.csv").write_bytes(out.getvalue().encode("utf-8-sig"))
    (HERE / "contacts.toml").write_text(CONTACTS_TOML, encoding="utf-8")


CONTACTS_TOML = """\
# Mapping for contacts.csv (an export from BSG, edited by the marketing team).
[columns]
"Contact ID" = "id"
"Mobile"     = "phone"
"First name" = "field:First name"
"City"       = 387716                                   # a custom field by id
"Plan"       = { target = "field:Plan", blank = "clear" }  # an empty Plan cell clears it
"Lists"      = "groups"

[options]
default_country = "GB"   # numbers typed as 07911 123456 are British
blank = "keep"           # other empty cells leave BSG's value alone
groups = "add"           # add the listed lists; never remove the contact from others
"""


# --------------------------------------------------------------------------- contacts-eu.csv


def write_contacts_eu(people: list[Person]) -> None:
    """Semicolons, cp1252, no id column: the Spanish office's own list of numbers."""
    spain = [p for p in people if p.country == "ES"]
    others = [p for p in people if p.country in ("FR", "DE")][:8]
    rows = []
    for i, p in enumerate(spain + others):
        phone = shown_phone(p, 0 if p.country == "ES" else 1, p.country == "ES")
        rows.append([phone, p.fields[F_FIRST], p.fields[F_LAST], p.fields[F_CITY],
                     list_names(p.groups)])
        if i in (1, 6):
            rows[-1][3] = "Málaga" if rows[-1][3] != "Málaga" else "Córdoba"
        if i in (3, 9, 15):
            rows[-1][4] = list_names(plus_one_list(p.groups))
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Teléfono", "Nombre", "Apellidos", "Ciudad", "Listas"])
    writer.writerows(rows)
    (HERE / "contacts-eu.csv").write_bytes(out.getvalue().encode("cp1252"))
    (HERE / "contacts-eu.toml").write_text(CONTACTS_EU_TOML, encoding="utf-8")


CONTACTS_EU_TOML = """\
# Mapping for contacts-eu.csv: Spanish headers, no contact id (the phone finds the contact).
[columns]
"Teléfono"  = "phone"
"Nombre"    = "field:First name"
"Apellidos" = "field:Last name"
"Ciudad"    = "field:City"
"Listas"    = "groups"

[options]
default_country = "ES"   # 612 34 56 78 is a Spanish mobile
"""


# --------------------------------------------------------------------------- newsletter.xlsx


def write_newsletter(people: list[Person]) -> None:
    """An Excel sign-up sheet: phones as text, zero-padded customer numbers, real dates."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Sign-ups"
    ws.append(["Customer no", "Phone", "First name", "Last name", "Birthday", "Lists"])
    chosen = [p for p in people if F_BIRTHDAY in p.fields][:30]
    for i, p in enumerate(chosen):
        groups = plus_one_list(p.groups) if i % 7 == 2 else p.groups
        birthday = dt.date.fromisoformat(p.fields[F_BIRTHDAY])
        if i == 8:  # typed the wrong year in BSG
            birthday = birthday.replace(year=birthday.year + 1, day=min(birthday.day, 28))
        ws.append([int(p.fields[F_CUSTNO]), shown_phone(p, 1 + i % 2, False),
                   p.fields[F_FIRST], p.fields[F_LAST], birthday, ", ".join(
                       GROUP_NAME[g] for g in groups)])
        row = ws.max_row
        ws.cell(row, 1).number_format = "000000"
        ws.cell(row, 2).number_format = "@"
        ws.cell(row, 5).number_format = "DD/MM/YYYY"
    for col, width in zip("ABCDEF", (12, 18, 12, 14, 12, 30), strict=True):
        ws.column_dimensions[col].width = width
    raw = io.BytesIO()
    wb.save(raw)
    (HERE / "newsletter.xlsx").write_bytes(_reproducible_zip(raw.getvalue()))
    (HERE / "newsletter.toml").write_text(NEWSLETTER_TOML, encoding="utf-8")


def _reproducible_zip(data: bytes) -> bytes:
    """The same workbook bytes on every run: fixed zip times and document timestamps."""
    stamp = "2026-03-01T09:00:00Z"
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*", rb"\g<1>" +
                              stamp.encode(), body)
            dst.writestr(zipfile.ZipInfo(info.filename, FIXED_TIME), body,
                         compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


NEWSLETTER_TOML = """\
# Mapping for newsletter.xlsx (tab "Sign-ups"): no contact id, the phone finds the contact.
[columns]
"Customer no" = "field:Customer no"   # zero-padded in Excel: 000123 stays 000123
"Phone"       = "phone"
"First name"  = "field:First name"
"Last name"   = "field:Last name"
"Birthday"    = "field:Birthday"      # Excel dates arrive as YYYY-MM-DD
"Lists"       = "groups"

[options]
groups = "add"
"""


def main() -> None:
    rng = random.Random(20260301)
    people = make_people(rng)
    (HERE / "seed.json").write_text(seed_json(people), encoding="utf-8")
    write_contacts(people, rng)
    write_contacts_eu(people)
    write_newsletter(people)


if __name__ == "__main__":
    main()
