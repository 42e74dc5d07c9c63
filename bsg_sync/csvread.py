"""CSV/TXT files -> (row number, cells) records: the encoding found strictly, the delimiter sniffed.

Decoding never guesses silently (README "Reading spreadsheets"):

1. a BOM (UTF-32, UTF-8, UTF-16) or the NUL pattern of BOM-less UTF-16/UTF-32 text wins;
2. else the whole file is streamed through a UTF-8 decoder: valid UTF-8 is UTF-8;
3. a file that holds valid UTF-8 multi-byte sequences *and* bytes that are not UTF-8 mixes
   two encodings: refused, naming the first bad row and byte;
4. else charset-normalizer judges the lines that hold non-ASCII bytes; cp1252 wins a tie with
   other encodings that read those lines the same way, another encoding is taken only when it
   alone reads them as language, and otherwise the file is refused naming the candidates;
5. the encoding chosen must decode the whole file strictly, or the file is refused.
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bsg_sync.errors import InputFileError

CSV_DELIMITERS = (",", ";", "\t", "|")
SNIFF_BYTES = 1 << 16
DETECT_SAMPLE_BYTES = 1 << 16  # non-ASCII lines handed to charset-normalizer
_CHUNK = 1 << 20
_HEAD = 4096

_BOMS = (  # UTF-32-LE's BOM starts with UTF-16-LE's: longest first
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_ESCAPED = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, under surrogateescape
_MULTIBYTE = re.compile("[\u0080-\udc7f\udd00-\U0010ffff]")  # a valid UTF-8 multi-byte char
_SEP_LINE = re.compile(r'\ufeff?"?sep=(.)"?\s*', re.IGNORECASE)
_MARK = 0x10FF00  # undecodable byte b -> chr(_MARK + b) while looking for the bad row
_MARKED = re.compile("[\U0010ff00-\U0010ffff]")
_WESTERN = "cp1252"
# what spreadsheet programs write besides Unicode (no DOS or Mac code pages: they only win ties)
_LEGACY = (
    "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258",
    "iso8859_2", "iso8859_5", "iso8859_7", "iso8859_8", "iso8859_9", "iso8859_13",
    "iso8859_15", "koi8_r", "koi8_u", "cp874", "cp932", "euc_jp", "gb18030", "big5", "cp949",
    "euc_kr",
)
_CJK = {"cp932", "shift_jis", "euc_jp", "gb18030", "big5", "cp949", "euc_kr"}


def _mark_bad_bytes(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(_MARK + b) for b in bad), exc.end


codecs.register_error("bsg_sync-mark", _mark_bad_bytes)


@dataclass(frozen=True, slots=True)
class CsvFormat:
    """How to read one text file: codec, delimiter, and whether line 1 is Excel's `sep=`."""

    codec: str
    delimiter: str
    sep_line: bool = False


# --------------------------------------------------------------------------- public


def csv_format(path: Path, encoding: str | None) -> CsvFormat:
    """The file's codec (given or detected) and delimiter (a `sep=` line, else sniffed)."""
    codec = encoding or detect_encoding(path)
    try:
        codecs.lookup(codec)
    except LookupError as exc:
        raise InputFileError(f"Unknown encoding {codec!r}; use e.g. utf-8 or cp1252.") from exc
    with path.open("rb") as fh:
        sample = fh.read(SNIFF_BYTES).decode(codec, errors="replace")
    first = sample.partition("\n")[0]
    sep = _SEP_LINE.fullmatch(first.rstrip("\r"))
    if sep:
        return CsvFormat(codec, sep.group(1), sep_line=True)
    return CsvFormat(codec, sniff_delimiter(sample))


@contextmanager
def csv_records(path: Path, fmt: CsvFormat) -> Iterator[Iterator[tuple[int, list[str]]]]:
    """(Excel row number, trimmed cells) of the file; decoding and CSV errors become one sentence."""
    with path.open(encoding=fmt.codec, newline="", errors="strict") as fh:
        try:
            yield _csv_grid(fh, fmt)
        except UnicodeDecodeError:
            raise _bad_byte_error(path, fmt) from None
        except csv.Error as exc:
            raise InputFileError(
                f"{path} is not a well-formed CSV ({exc}); check for an unclosed quote."
            ) from exc


def _csv_grid(fh: IO[str], fmt: CsvFormat) -> Iterator[tuple[int, list[str]]]:
    """One row per record (a quoted line break does not start one); Excel hides `sep=`."""
    if fmt.sep_line:
        fh.readline()
    for number, record in enumerate(csv.reader(fh, delimiter=fmt.delimiter), start=1):
        yield number, [cell.strip() for cell in record]


# --------------------------------------------------------------------------- encodings


def wide_codec(head: bytes) -> str | None:
    """UTF-32/UTF-16 from a BOM or from where the NULs of mostly-ASCII text fall; else None."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec if codec != "utf-8-sig" else None
    sample = head[:_HEAD]
    quarter = len(sample) // 4
    if quarter >= 2:
        n = [sample[i::4][:quarter].count(0) for i in range(4)]
        if n[1] > 0.6 * quarter and min(n[2], n[3]) > 0.95 * quarter and n[0] < 0.05 * quarter:
            return "utf-32-le"
        if n[2] > 0.6 * quarter and min(n[0], n[1]) > 0.95 * quarter and n[3] < 0.05 * quarter:
            return "utf-32-be"
    half = len(sample) // 2
    if half >= 2:
        even_nuls, odd_nuls = sample[0::2].count(0), sample[1::2].count(0)
        if odd_nuls > 0.4 * half and even_nuls < 0.05 * half:
            return "utf-16-le"
        if even_nuls > 0.4 * half and odd_nuls < 0.05 * half:
            return "utf-16-be"
    return None


def detect_encoding(path: Path) -> str:
    """The file's encoding, by the rules in this module's docstring; refuses rather than guess."""
    with path.open("rb") as fh:
        head = fh.read(_HEAD)
    if head.startswith(codecs.BOM_UTF8):
        codec = "utf-8-sig"
    else:
        codec = wide_codec(head) or _not_wide_codec(path)
    if codec not in ("utf-8", "utf-8-sig") and not _decodes(path, codec):
        raise _bad_byte_error(path, CsvFormat(codec, _sniff(path, codec)))
    return codec


def _not_wide_codec(path: Path) -> str:
    scan = _scan_utf8(path)
    if not scan.invalid:
        return "utf-8"
    if scan.multibyte:
        # UTF-8 look-alike byte pairs are ordinary characters in a double-byte (CJK) codec;
        # in a single-byte one they are mojibake (Ã¼): only a CJK reading may explain the mix.
        text = scan.sample.decode("utf-8", errors="surrogateescape")
        if len(_ESCAPED.findall(text)) > len(_MULTIBYTE.findall(text)):
            codec = _legacy_codec(path, scan.sample, refuse=False)
            if codec in _CJK:
                return codec
        row, byte = first_bad_cell(path, CsvFormat("utf-8", _sniff(path, "utf-8")))
        raise InputFileError(
            f"{path} mixes UTF-8 with another encoding (row {row} holds the byte 0x{byte:02X}, "
            "which is not UTF-8, while other rows are UTF-8); save the sheet again as "
            "\"CSV UTF-8\", or pass --encoding if the whole file is in one other encoding."
        )
    return _legacy_codec(path, scan.sample) or _WESTERN


@dataclass(slots=True)
class _Utf8Scan:
    invalid: bool = False  # a byte that is not UTF-8
    multibyte: bool = False  # a valid UTF-8 multi-byte sequence
    sample: bytes = b""  # the first lines with non-ASCII bytes (DETECT_SAMPLE_BYTES)


def _scan_utf8(path: Path) -> _Utf8Scan:
    """Is it UTF-8 (one strict pass, the common case); if not, a second pass: does it mix,
    and the first non-ASCII lines."""
    scan = _Utf8Scan()
    if _decodes(path, "utf-8"):
        return scan
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    lines: list[bytes] = []
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            text = decoder.decode(chunk)
            if text.isascii():
                continue
            scan.invalid = scan.invalid or bool(_ESCAPED.search(text))
            scan.multibyte = scan.multibyte or bool(_MULTIBYTE.search(text))
            if size < DETECT_SAMPLE_BYTES:
                for line in chunk.split(b"\n"):
                    if not line.isascii() and size < DETECT_SAMPLE_BYTES:
                        lines.append(line)
                        size += len(line) + 1
            if scan.invalid and scan.multibyte and size >= DETECT_SAMPLE_BYTES:
                break
    scan.invalid = scan.invalid or bool(_ESCAPED.search(decoder.decode(b"", final=True)))
    scan.sample = b"\n".join(lines)
    return scan


def _legacy_codec(path: Path, sample: bytes, refuse: bool = True) -> str | None:
    """cp1252 when it reads the non-ASCII lines as well as any; another codec only if sure."""
    import charset_normalizer

    results = list(charset_normalizer.from_bytes(sample, cp_isolation=list(_LEGACY)))
    if not results:
        if not refuse:
            return None
        raise InputFileError(
            f"{path} is not UTF-8 and no encoding reads it as text; save the sheet again as "
            "\"CSV UTF-8\", or pass the right --encoding."
        )
    best_chaos = min(m.chaos for m in results)
    tied = [m for m in results if m.chaos <= best_chaos + 0.01]
    best_coherence = max(m.coherence for m in tied)
    top = [m for m in tied if m.coherence >= best_coherence - 0.05]
    if any(_WESTERN in _codec_names(m) for m in top) and _decodes_bytes(sample, _WESTERN):
        return _WESTERN
    readings = _fewest_symbols(top)
    first = codecs.lookup(readings[0].encoding).name
    alone = len({str(m) for m in tied}) == 1
    if len(readings) == 1 and (best_coherence >= 0.1 or alone):
        return first
    lead = results[0]
    if lead.encoding in _CJK and lead.chaos == 0 and len(str(lead)) - len(sample) <= -8:
        return codecs.lookup(lead.encoding).name  # >= 8 double-byte characters, no chaos
    if not refuse:
        return None
    names = ", ".join(codecs.lookup(m.encoding).name for m in top[:4])
    raise InputFileError(
        f"{path} is not UTF-8 and its encoding cannot be told for sure (it could be {names}); "
        "pass --encoding with the right one, or save the sheet again as \"CSV UTF-8\"."
    )


def _fewest_symbols(matches: list[Any]) -> list[Any]:
    """One match per distinct reading, keeping those with the fewest stray signs (¶, ©, ΅…)."""
    by_text: dict[str, Any] = {}
    for m in matches:
        by_text.setdefault(str(m), m)

    def symbols(text: str) -> int:
        return sum(1 for ch in text if not ch.isascii() and unicodedata.category(ch)[0] in "SCP")

    scored = [(symbols(text), m) for text, m in by_text.items()]
    least = min(score for score, _ in scored)
    return [m for score, m in scored if score == least]


def _codec_names(match: object) -> set[str]:
    names = {getattr(match, "encoding", "")}
    names.update(getattr(match, "could_be_from_charset", []) or [])
    return {codecs.lookup(n).name for n in names if n}


def _decodes_bytes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _decodes(path: Path, codec: str) -> bool:
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _sniff(path: Path, codec: str) -> str:
    return csv_format(path, codec).delimiter


def first_bad_cell(path: Path, fmt: CsvFormat) -> tuple[int, int]:
    """(Excel row number, byte value) of the first byte that `fmt.codec` cannot decode."""
    with path.open(encoding=fmt.codec, newline="", errors="bsg_sync-mark") as fh:
        try:
            for number, cells in _csv_grid(fh, fmt):
                for cell in cells:
                    found = _MARKED.search(cell)
                    if found:
                        return number, ord(found.group()) - _MARK
        except csv.Error:
            pass
    return 0, 0


def _bad_byte_error(path: Path, fmt: CsvFormat) -> InputFileError:
    row, byte = first_bad_cell(path, fmt)
    where = f"row {row} holds the byte 0x{byte:02X}" if row else "it ends in the middle of a character"
    return InputFileError(
        f"{path} is not valid {fmt.codec} ({where}); pass the right --encoding, "
        "or save the sheet again as \"CSV UTF-8\"."
    )


# --------------------------------------------------------------------------- delimiter


def sniff_delimiter(sample: str) -> str:
    """The delimiter among , ; TAB | whose count outside quotes is most consistent per line."""
    records = _records_outside_quotes(sample)
    best, best_score = ",", (0.0, 0)
    for delimiter in CSV_DELIMITERS:
        counts = [r.count(delimiter) for r in records if r.strip()]
        if not counts:
            continue
        mode, _ = Counter(counts).most_common(1)[0]
        if mode == 0:
            continue
        score = (sum(1 for c in counts if c == mode) / len(counts), mode)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _records_outside_quotes(sample: str, limit: int = 50) -> list[str]:
    """The first complete records of the sample, with quoted text removed."""
    records: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in sample:
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "\n":
            records.append("".join(current))
            current = []
            if len(records) >= limit:
                break
        else:
            current.append(ch)
    if not records and current:
        records.append("".join(current))
    return records
