"""Shared helpers for the reliability, fuzz and security tests: a generated world (seed, sheet,
mapping), the emulator as a subprocess, and the real CLI as a subprocess."""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
API_KEY = "live_reliability_k3y_f00d_7c1d"  # distinctive, so a leak is easy to find

FIRST, CITY = 387700, 387701
GROUPS = {1864618: "Newsletter", 1864619: "VIP", 1864620: "Spring promo"}
MAPPING = """[columns]
"Contact ID" = "id"
"Mobile" = "phone"
"First name" = "field:First name"
"City" = "field:City"
"Lists" = "groups"

[options]
default_country = "GB"
"""


def phone_of(i: int) -> str:
    return f"4477009{i:05d}"


@dataclass(frozen=True)
class Wanted:
    """What one sheet row wants its contact to be after the sync."""

    row: int
    contact_id: int
    phone: str
    fields: dict[int, str]
    groups: frozenset[int]


@dataclass
class World:
    """A seed, a sheet that changes `changed` of its rows, a mapping and a state path."""

    dir: Path
    seed: Path
    sheet: Path
    mapping: Path
    state: Path
    wanted: list[Wanted] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.wanted)

    def report(self, name: str = "report.jsonl") -> Path:
        return self.dir / name


def make_world(root: Path, rows: int = 40, *, changed: int | None = None) -> World:
    """`rows` contacts in the seed; the sheet changes the first `changed` (default: all) of them:
    a new city for each, a new first name for every other, a phone for every fifth, a list
    for every third."""
    root.mkdir(parents=True, exist_ok=True)
    changed = rows if changed is None else changed
    contacts: list[dict[str, Any]] = []
    wanted: list[Wanted] = []
    lines: list[list[str]] = [["Contact ID", "Mobile", "First name", "City", "Lists"]]
    for i in range(rows):
        cid = 248500000 + i
        phone = phone_of(i)
        fields = {FIRST: f"Name{i}", CITY: f"Town{i}"}
        groups = {1864618}
        contacts.append({"id": cid, "phone": int(phone), "fields": {str(k): v for k, v in
                                                                    fields.items()},
                         "groups": sorted(groups), "hlr_status": "active",
                         "hlr_last_check": "2026-01-01 10:00:00"})
        lists = {1864618}
        if i < changed:
            fields = {FIRST: fields[FIRST] if i % 2 else f"Neu{i}", CITY: f"City{i}"}
            if i % 5 == 4:
                phone = phone_of(50000 + i)
            if i % 3 == 0:
                lists = {1864618, 1864619}
        sheet_phone = f"+{phone[:2]} {phone[2:6]} {phone[6:]}"
        lines.append([str(cid), sheet_phone, fields[FIRST], fields[CITY],
                      "; ".join(GROUPS[g] for g in sorted(lists))])
        wanted.append(Wanted(i + 2, cid, phone, dict(fields), frozenset(groups | lists)))
    seed = {"fields": [{"id": FIRST, "name": "First name", "type": "text"},
                       {"id": CITY, "name": "City", "type": "text"}],
            "groups": [{"id": k, "name": v} for k, v in GROUPS.items()],
            "contacts": contacts}
    world = World(root, root / "seed.json", root / "contacts.csv", root / "bsg-sync.toml",
                  root / "state" / "state.sqlite3", wanted)
    world.seed.write_text(json.dumps(seed), encoding="utf-8")
    with world.sheet.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(lines)
    world.mapping.write_text(MAPPING, encoding="utf-8")
    return world


# --------------------------------------------------------------------------- emulator


class EmulatorProcess:
    """`python -m bsg_sync emulator --port 0 ...` in a subprocess; its -v log in a file."""

    def __init__(self, seed: Path | None, *flags: str, log: Path, verbose: bool = True) -> None:
        args = [PYTHON, "-m", "bsg_sync", "emulator", "--port", "0", *flags]
        if seed is not None:
            args += ["--seed", str(seed)]
        if verbose:
            args.append("-v")
        self.log = log
        self._log_fh = log.open("wb")
        self.proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=self._log_fh, env=_base_env())
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the emulator did not start: {line!r} {log.read_text()}")
        self.url = line
        self._token: str | None = None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_fh.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- introspection
    def stats(self) -> dict[str, Any]:
        return dict(requests.get(f"{self.url}/_emulator/stats", timeout=10).json())

    def inject(self, *faults: str) -> None:
        resp = requests.post(f"{self.url}/_emulator/faults", json={"next": list(faults)},
                             timeout=10)
        assert resp.status_code == 200, resp.text

    def requests_logged(self) -> list[tuple[str, str]]:
        """(method, path) of every API request the emulator answered, in order (-v log)."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return [(m, p) for m, p in re.findall(r'"([A-Z]+) (/api/[^ ?"]*)[^"]*" \d{3}', text)]

    def put_ids(self, since: int = 0) -> list[int]:
        """Contact ids of the PUTs logged after the first `since` logged requests."""
        return [int(p.rsplit("/", 1)[1]) for m, p in self.requests_logged()[since:]
                if m == "PUT" and re.fullmatch(r"/api/contacts/\d+", p)]

    def _api(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        """One API call, retried through the emulator's random faults (test plumbing only)."""
        for _ in range(60):
            headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
            try:
                resp = requests.request(method, self.url + path, headers=headers, timeout=10,
                                        **kw)
                if resp.status_code == 200:
                    return dict(resp.json())
                if resp.status_code == 401 and path != "/api/auth/login":
                    self._token = None
                    self._login()
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{method} {path} kept failing")

    def _login(self) -> None:
        self._token = None
        self._token = str(self._api("POST", "/api/auth/login", json={"api_key": API_KEY})
                          ["bearer"])

    def contacts(self) -> dict[int, dict[str, Any]]:
        """Every contact the emulator holds, by id (through the API, paged)."""
        if self._token is None:
            self._login()
        out: dict[int, dict[str, Any]] = {}
        offset = 0
        while True:
            page = self._api("GET", "/api/contacts",
                             params={"page[limit]": 500, "page[offset]": offset})
            for c in page["data"]:
                out[int(c["id"])] = c
            offset += len(page["data"])
            if len(page["data"]) < 500:
                return out


def mismatches(world: World, contacts: dict[int, dict[str, Any]]) -> list[str]:
    """Where the emulator's contacts differ from what the sheet wants (empty: all equal)."""
    out = []
    for w in world.wanted:
        c = contacts.get(w.contact_id)
        if c is None:
            out.append(f"row {w.row}: contact {w.contact_id} missing")
            continue
        fields = c["fields"] or {}
        got = (str(c["phone"]), {int(k): v for k, v in fields.items()},
               frozenset(int(g["id"]) if isinstance(g, dict) else int(g) for g in c["groups"]))
        if got != (w.phone, w.fields, w.groups):
            out.append(f"row {w.row}: {got} != {(w.phone, w.fields, w.groups)}")
    return out


# --------------------------------------------------------------------------- the CLI


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BSG_")}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli_env(state: Path, key: str | None = API_KEY, **extra: str) -> dict[str, str]:
    env = _base_env()
    env["BSG_STATE"] = str(state)
    if key is not None:
        env["BSG_API_KEY"] = key
    env.update(extra)
    return env


def sync_args(world: World, url: str, *extra: str, report: Path | None = None) -> list[str]:
    return [PYTHON, "-m", "bsg_sync", "sync", str(world.sheet), "--api-url", url,
            "--report", str(report or world.report()), *extra]


def run_cli(args: Sequence[str], env: dict[str, str], *, timeout: float = 60,
            prefix: Sequence[str] = (), umask: int = -1) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, umask=umask)


def start_cli(args: Sequence[str], env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    """The CLI in the background; stdout and stderr go to `out` (read it after wait())."""
    with out.open("wb") as fh:
        return subprocess.Popen(list(args), cwd=REPO, env=env, stdout=fh,
                                stderr=subprocess.STDOUT)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- outputs


def read_report(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8-sig").splitlines()
            if line.strip()]


def journal(state: Path, run_id: int | None = None) -> list[tuple[int, int | None, str]]:
    """(row, contact_id, status) from the state store's results table, read with sqlite3."""
    con = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        if run_id is None:
            run_id = con.execute("SELECT max(id) FROM runs").fetchone()[0]
        rows = con.execute("SELECT row, contact_id, status FROM results WHERE run_id = ? "
                           "ORDER BY row", (run_id,)).fetchall()
    finally:
        con.close()
    return [(int(r), c, str(s)) for r, c, s in rows]
