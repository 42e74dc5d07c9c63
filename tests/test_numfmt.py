"""The Excel number-format renderer: a table of (value, format code) -> the text Excel shows."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsg_sync.numfmt import (
    BUILTIN_FORMATS,
    builtin_format,
    cell_renderer,
    general,
    general_column,
    is_date_format,
    parse_format,
    render_cell,
    render_number,
    render_sections,
    render_text,
    to_serial,
)

ACCOUNTING = '_(* #,##0.00_);_(* \\(#,##0.00\\);_(* "-"??_);_(@_)'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1 + 0.2, "0.3"),
        (274.66, "274.66"),
        (274.65999999999997, "274.66"),
        (1 / 3, "0.333333333333333"),
        (-5.0, "-5"),
        (0.0, "0"),
        (12.0, "12"),
        (447700900123.0, "447700900123"),  # a phone stored as a number keeps every digit
        (123456789012345.0, "123456789012345"),  # 15 digits: whole
        (1234567890123456.0, "1.23456789012346E+15"),  # 16 digits: Excel's precision ends
        (4.4771234567891235e16, "4.47712345678912E+16"),
        (1e-5, "1E-05"),
        (0.0001, "0.0001"),
        (1.5e300, "1.5E+300"),
        (-2.5e-7, "-2.5E-07"),
        (123.456, "123.456"),
    ],
)
def test_general(value: float, expected: str) -> None:
    assert general(value) == expected
    assert render_number(value, "General") == expected


@pytest.mark.parametrize(
    ("value", "code", "expected"),
    [
        # fixed decimals and rounding (half away from zero on the decimal value)
        (9.5, "0.00", "9.50"),
        (1000.5577, "0", "1001"),
        (2.675, "0.00", "2.68"),
        (-2.5, "0", "-3"),
        (0.5, "0.0?", "0.5 "),
        (0.5, "#.##", ".5"),
        (1.0, "#.##", "1."),
        (12.0, "0", "12"),
        (-0.4, "0", "-0"),
        (0.1 + 0.2, "0.00000000000000000", "0.30000000000000000"),  # 15 digits, as Excel keeps
        (1.2345678901234567e20, "0", "123456789012346000000"),
        (1.5e300, "0.00", "15" + "0" * 299 + ".00"),
        # zero padding and literals
        (1234.0, "00000", "01234"),
        (6083.0, "00000", "06083"),
        (123456.0, "0000", "123456"),
        (7700900123.0, "000000000000", "007700900123"),
        (7700900123.0, "00000 000000", "07700 900123"),
        (2125551234.0, "(000) 000-0000", "(212) 555-1234"),
        (42.0, '"ID-"0000', "ID-0042"),
        (42.0, "\\#0000", "#0042"),
        (5.0, '0" kg"', "5 kg"),
        # thousands separators and scaling commas
        (7890.0, "#,##0", "7,890"),
        (1234567.891, "#,##0.00", "1,234,567.89"),
        (12.0, "0,000", "0,012"),
        (3.0, "#,##0.000", "3.000"),
        (1234567.0, "#,##0,", "1,235"),
        (1234567.0, '0.0,,"M"', "1.2M"),
        (-1234567.0, "#,##0", "-1,234,567"),
        # percent
        (0.9876, "0.00%", "98.76%"),
        (0.5, "0%", "50%"),
        (12.0, "0%", "1200%"),
        # currency, escapes, padding, fill
        (123.0, '"$"#,##0.00', "$123.00"),
        (-123.0, '"$"#,##0.00', "-$123.00"),
        (1234.5, "[$€-407]#,##0.00", "€1,234.50"),
        (1234.5, "#,##0.00 [$€-407]", "1,234.50 €"),
        (1234.5, '#,##0.00\\ "₽"', "1,234.50 ₽"),
        (99.0, "[$-409]0", "99"),
        (7.0, "**0", "7"),
        (7.0, "0_)", "7 "),
        # negative sections and parentheses
        (-5.0, "0;(0)", "(5)"),
        (-123.0, "$#,##0.00_);($#,##0.00)", "($123.00)"),
        (123.0, "$#,##0.00_);($#,##0.00)", "$123.00 "),
        (-5.0, "0;[Red]\\-0", "-5"),
        (-3.0, "0;;", ""),
        (0.0, '0;-0;"zero"', "zero"),
        (1234.5, ACCOUNTING, " 1,234.50 "),
        (-1234.5, ACCOUNTING, " (1,234.50)"),
        (0.0, ACCOUNTING, " -   "),
        # fractions
        (0.75, "# ?/?", "  3/4"),
        (1.5, "# ?/?", "1 1/2"),
        (2.0, "# ?/?", "2    "),
        (0.0, "# ?/?", "0    "),
        (3.14159, "# ??/??", "3 14/99"),
        (2.5, "?/8", "20/8"),
        (2.5, "# ?/8", "2 4/8"),
        (-1.25, "# ?/?", "-1 1/4"),
        (0.99, "# ?/?", "1    "),
        # scientific
        (12345.0, "0.00E+00", "1.23E+04"),
        (0.00012, "0.00E+00", "1.20E-04"),
        (12345.0, "##0.0E+0", "12.3E+3"),
        (0.0, "0.00E+00", "0.00E+00"),
        (99999.0, "0.0E+00", "1.0E+05"),
        # conditions and colours
        (5.0, '[<1000]0;[>=1000]#,##0,"K"', "5"),
        (5000.0, '[<1000]0;[>=1000]#,##0,"K"', "5K"),
        (5.0, "[Red]0.00", "5.00"),
        (-5.0, '[<0]"neg "0;0', "neg 5"),
        # text sections and General inside a section
        (12.0, "@", "12"),
        (12.0, '0;-0;0;"text: "@', "12"),
        (1.5, 'General" m"', "1.5 m"),
        (-1.5, '"$"General', "-$1.5"),
    ],
)
def test_numbers(value: float, code: str, expected: str) -> None:
    assert render_number(value, code) == expected


@pytest.mark.parametrize(
    ("serial", "code", "expected"),
    [
        # the project's date rule: YYYY-MM-DD, plus HH:MM:SS when the format has a time part
        (41684.35264774306, "m/d/yy", "2014-02-14"),  # date-only format, value with a time
        (41684.35264774306, "m/d/yy h:mm", "2014-02-14 08:27:49"),
        (41684.0, "yyyy-mm-dd", "2014-02-14"),
        (41684.0, "m/d/yy h:mm", "2014-02-14"),  # no time in the value: the date alone
        (41684.0, "d-mmm-yy", "2014-02-14"),
        (41684.0, "[$-419]dd.mm.yyyy", "2014-02-14"),
        (41684.0, "dddd, mmmm d, yyyy", "2014-02-14"),
        (41684.99999, "yyyy-mm-dd", "2014-02-14"),
        (41684.999999, "yyyy-mm-dd hh:mm:ss", "2014-02-15"),  # rounds to the second: midnight
        (60.0, "yyyy-mm-dd", "1900-02-29"),  # Excel's leap day
        (61.0, "yyyy-mm-dd", "1900-03-01"),
        (1.0, "yyyy-mm-dd", "1900-01-01"),
        (0.0, "yyyy-mm-dd", "1900-01-00"),
        (2958465.0, "yyyy-mm-dd", "9999-12-31"),
        (2958466.0, "yyyy-mm-dd", "2958466"),  # Excel shows ####### : the number
        (-1.0, "yyyy-mm-dd", "-1"),
        # time-only formats are shown as written
        (0.9894861111111112, "h:mm:ss", "23:44:52"),  # 23:44:51.6 rounds up
        (0.35264774306, "h:mm AM/PM", "8:27 AM"),
        (0.85, "hh:mm:ss AM/PM", "08:24:00 PM"),
        (0.85, "h:mm a/p", "8:24 p"),
        (0.5, "h:mm", "12:00"),
        (1.253472222222222, "[h]:mm", "30:05"),
        (1.253472222222222, "[mm]:ss", "1805:00"),
        (1.253472222222222, "[h]:mm:ss", "30:05:00"),
        (0.000694, "mm:ss.0", "01:00.0"),
        (0.00001, "mm:ss.00", "00:00.86"),
        (0.5, "h", "12"),
    ],
)
def test_dates_and_times(serial: float, code: str, expected: str) -> None:
    assert render_number(serial, code) == expected


def test_1904_date_system() -> None:
    assert render_number(0.0, "yyyy-mm-dd", date1904=True) == "1904-01-01"
    assert render_number(40222.0, "yyyy-mm-dd", date1904=True) == "2014-02-14"
    assert render_number(2957004.0, "yyyy-mm-dd", date1904=True) == "2957004"


@pytest.mark.parametrize("format_id", range(50))
def test_every_builtin_format_renders(format_id: int) -> None:
    code = builtin_format(format_id)
    for value in (0.0, 1.5, -1234.5678, 41684.35264774306):
        assert isinstance(render_number(value, code), str)


@pytest.mark.parametrize(
    ("format_id", "value", "expected"),
    [
        (0, 0.1 + 0.2, "0.3"),
        (1, 1.6, "2"),
        (3, 7890.0, "7,890"),
        (4, 7890.5, "7,890.50"),
        (7, -123.0, "($123.00)"),
        (10, 0.9876, "98.76%"),
        (11, 12345.0, "1.23E+04"),
        (12, 0.25, "  1/4"),
        (14, 41684.0, "2014-02-14"),
        (22, 41684.5, "2014-02-14 12:00:00"),
        (21, 0.9894861111111112, "23:44:52"),
        (46, 1.5, "36:00:00"),
        (48, 12345.0, "12.3E+3"),
        (49, 6083.0, "6083"),
        (99, 1.5, "1.5"),
    ],
)
def test_builtin_ids(format_id: int, value: float, expected: str) -> None:
    assert render_number(value, builtin_format(format_id)) == expected


def test_builtins_cover_the_standard_ids() -> None:
    assert set(range(50)) - set(BUILTIN_FORMATS) == {23, 24, 25, 26}  # undefined in en-US


@pytest.mark.parametrize(
    ("code", "is_date"),
    [
        ("yyyy-mm-dd", True),
        ("h:mm", True),
        ("[h]:mm:ss", True),
        ("0.00", False),
        ('"d"0', False),
        ("General", False),
        ("@", False),
        ("[Red]0", False),
        ('#,##0\\ "min"', False),
    ],
)
def test_is_date_format(code: str, is_date: bool) -> None:
    assert is_date_format(code) is is_date


def test_text_sections() -> None:
    assert render_text("Ann", '"Name: "@') == "Name: Ann"
    assert render_text("Ann", '0;-0;0;"<"@">"') == "<Ann>"
    assert render_text("Ann", "0.00") == "Ann"


def test_quoted_semicolons_do_not_split_sections() -> None:
    assert len(parse_format('"a;b"0;"c"0')) == 2
    assert render_number(3.0, '"a;b"0;"c"0') == "a;b3"


FAST_CODES = ["0.00", "#,##0", "#,##0.00", "00000", '"$"#,##0.00', "0", "0.000_)", "0.",
              "[$€-407]#,##0.00", "0,000", "#0.0", "yyyy-mm-dd", "d-mmm-yy", "m/d/yyyy"]


@settings(max_examples=400)
@given(
    st.one_of(st.floats(-1e14, 1e14, allow_nan=False), st.floats(0, 2958466),
              st.integers(-(10**15), 10**15).map(float), st.sampled_from([0.5, 2.675, -2.5, 0.0])),
    st.sampled_from(FAST_CODES),
)
def test_the_fast_path_agrees_with_the_general_renderer(value: float, code: str) -> None:
    assert render_number(value, code) == render_sections(value, code)
    assert cell_renderer(code)(value) == render_sections(value, code).strip()


@given(st.datetimes(dt.datetime(1900, 3, 1), dt.datetime(9999, 12, 30)),
       st.sampled_from(["yyyy-mm-dd", "m/d/yy h:mm:ss", "d-mmm-yy", "h:mm:ss", "[h]:mm"]))
def test_calamine_dates_agree_with_their_serial(when: dt.datetime, code: str) -> None:
    serial_text = render_sections(to_serial(when), code).strip()
    assert render_cell(when, code) == serial_text
    assert cell_renderer(code)(when) == serial_text


def test_a_date_calamine_read_under_a_number_format_stays_a_date() -> None:
    when = dt.datetime(2000, 1, 1, 12)
    assert render_cell(when, "0.00") == cell_renderer("0.00")(when) == "2000-01-01 12:00:00"


def test_xlsx_style_codes_read_custom_and_builtin_ids_in_either_ooxml_flavour() -> None:
    from bsg_sync.numfmt import has_format, xlsx_style_codes

    for ns in ("http://schemas.openxmlformats.org/spreadsheetml/2006/main",
               "http://purl.oclc.org/ooxml/spreadsheetml/main"):
        styles = (f'<styleSheet xmlns="{ns}"><numFmts count="1"><numFmt numFmtId="164" '
                  'formatCode="00000"/></numFmts><cellXfs count="4"><xf numFmtId="0"/>'
                  '<xf numFmtId="164"/><xf numFmtId="10"/><xf numFmtId=""/></cellXfs></styleSheet>')
        assert xlsx_style_codes(styles.encode()) == ["General", "00000", "0.00%", "General"]
    assert [has_format(c) for c in ("General", " @ ", "", "0.00")] == [False, False, False, True]


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**16, 10**16)
                .map(float) | st.sampled_from([0.0, -0.0, 1e15, 999999999999999.0, 0.1 + 0.2]),
                max_size=40))
def test_a_column_of_floats_reads_as_general_reads_each_cell(values: list[float]) -> None:
    assert general_column(values) == [general(v) for v in values]
