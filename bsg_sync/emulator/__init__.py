"""The bundled BSG One-API emulator: contacts, lists, fields and auth, faithful to the reference.

It also serves BSG's v1 HLR (Number Verifier) API on the same port under ``/rest/hlr/``
(mirroring ``https://api.bsg.world/rest/``), with ``X-API-KEY`` auth, errors in 200 bodies,
results chosen by each number's last digit, prices per country/operator and a balance that
goes down (``hlr_api``, ``hlr_data``); the same latency and faults apply to it, its stats are
``GET /_emulator/hlr`` (kept apart from the One-API ``/_emulator/stats``).

Use it in tests as a context manager; it serves on 127.0.0.1 on a free port in a thread::

    from bsg_sync.emulator import Emulator, EmulatorConfig
    with Emulator(EmulatorConfig(put_semantics="replace"), seed="seed.json") as emu:
        emu.url; emu.stats(); emu.contacts(); emu.inject("503", "drop"); emu.reset()
        emu.edit_before_put(248400001, fields={387714: "X"}, groups_add=[5])  # a colleague
        emu.answer_with_wrong_id(1)  # the next contact PUT/POST answer is about another id

The same over HTTP: ``POST /_emulator/faults`` with ``next``, ``edit_before_put``,
``edit_before_get``, ``edit_after_get`` and ``wrong_id_answers``; ``GET /_emulator/hooks``;
see ``hooks.py``.

Seeds
-----
JSON, in the API's own shapes::

    {"fields":   [{"id": 387714, "name": "City", "type": "text"}],
     "groups":   [{"id": 1864618, "name": "Newsletter"}],
     "contacts": [{"id": 248400001, "phone": 447700900123,
                   "fields": {"387714": "London"},          # or [] or [{"id", "value"}]
                   "groups": [1864618],                     # ids or {"id": ...} objects
                   "hlr_status": "active", "hlr_last_check": "2025-03-01 10:00:00"}]}

CSV, one contact per row, with a header row::

    id,phone,groups,City,First name
    248400001,447700900123,Newsletter;1864620,London,Jane
    ,447700900124,,Leeds,

``phone`` is required; ``id`` (blank: next free id), ``groups`` (``;``-separated list ids or
list names; a name becomes a list of that name, a bare id a list called "List <id>"),
``hlr_status``, ``hlr_last_check`` and ``created_at`` are optional reserved columns. Every other
column is a text custom field named after its header, with ids 387700, 387701, … in header order.

PUT /api/contacts/{id} semantics (``put_semantics``; BSG documents only that ``groups`` are
lists "to add the contact to", reference §3.5 and §11 #15, so both readings are served)
----------------------------------------------------------------------------------------
``phone`` is required either way. ``merge`` (the default, following the docs):

* ``fields`` absent or ``[]``: every value is kept; present: each sent field is set, an empty
  string clears that one field, unsent fields are kept.
* ``groups`` absent or ``[]``: every membership is kept; present: the sent lists are *added*
  (a union); a PUT never removes a membership (use ``POST /api/groups/detach``).

``replace`` (the hostile reading, for testing clients): the contact becomes exactly the body.

* ``fields`` absent or ``[]``: every value is cleared; present: exactly the sent non-empty values.
* ``groups`` absent or ``[]``: every membership is dropped; present: exactly the sent lists.

Either way a body's ``groups`` holds at most 100 ids (422 ``groups: This collection should
contain 100 elements or less.``) while ``POST /api/groups/attach`` has no cap on a contact's
total, so a contact can be in more than 100 lists; attach/detach take 1-200 contacts and
1-``attach_max_groups`` lists (100 per BSG's spec; 20 per its docs) per call (§4.7).

Fidelity notes (reference = /work/shared/reference/bsg-one-api.md): a missing or unexpected
*body* key answers ``{"errors": {"any_field": ["This field is missing."]}}`` /
``…["This field was not expected."]`` without naming the key (§1.2, §3.4; nested ``fields[]``
items too), while an unexpected *query* key keeps its flattened name (``per``, §3.1); the
duplicate-request throttle covers every POST except login, and PUT /api/contacts/{id} (§8.4),
not DELETE, PATCH or PUT on lists; ``page[offset]`` is any non-negative integer; an empty
``sort=``/``way=`` is a bad choice; a malformed chunked body is a 400 ``Could not decode
request body.`` and closes the connection (so is a body shorter than its Content-Length; one over
64 MiB is a 413, never allocated); 405 answers carry ``Allow``; any other method
(TRACE, PROPFIND, …) on an API path gets the JSON 405; HEAD is served as GET without a body.

Behaviour choices where BSG's documentation is silent: an empty-string field value clears the
field; DELETE of an unknown contact is 422 ``Invalid contact id``; stats count PATCH only once
one was seen.
"""

from __future__ import annotations

from bsg_sync.emulator.config import EmulatorConfig
from bsg_sync.emulator.faults import SIMPLE_FAULTS
from bsg_sync.emulator.seed import SeedError
from bsg_sync.emulator.server import Emulator

__all__ = ["SIMPLE_FAULTS", "Emulator", "EmulatorConfig", "SeedError"]
