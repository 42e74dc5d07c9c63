from pathlib import Path

from bsg_sync.mapping import map_rows, parse_mapping, resolve_mapping
from bsg_sync.models import Account, CellProblem, Field, Sheet, SheetRow


def test_a_problem_in_a_mapped_cell_makes_the_row_invalid_and_elsewhere_not() -> None:
    acc = Account(fields=(Field(1, "City"),))
    sheet = Sheet(Path("x.csv"), ("Phone", "City", "Notes"), [
        SheetRow(2, ("+447700900123", "Le\x1beds", ""), (CellProblem(1, "control-character", "U+001B"),)),
        SheetRow(3, ("+447700900124", "York", "#N/A"), (CellProblem(2, "cell-error", "#N/A"),)),
    ], "0")
    raw = parse_mapping('[columns]\n"Phone" = "phone"\n"City" = "field:City"\n')
    m = resolve_mapping(raw, sheet.headers, acc)
    out = map_rows(sheet, m, acc)
    assert [(r.row, r.error_code) for r in out.results] == [(2, "control-character")]
    assert "column 'City'" in out.results[0].error and "U+001B" in out.results[0].error
    assert [d.row for d in out.desired] == [3]
