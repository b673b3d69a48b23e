"""Fingerprints: a whole chunk at once, equal payloads equal, any change a different value; a
journal an older payor wrote (BLAKE2b) still knows its rows, once, then holds today's."""

from __future__ import annotations

import json
import random
import sqlite3

import numpy as np
import pyarrow as pa

from payor_cli.fingerprint import legacy_fingerprints, payload_fingerprints


def payloads(n: int) -> list[str]:
    return [
        json.dumps(
            {"invoiceNumber": f"I{i:06d}", "customerName": f"Kunde Ü{i}", "invoiceAmount": i * 7}
        )
        for i in range(n)
    ]


def test_equal_payloads_equal_prints_wherever_they_are():
    texts = payloads(300)
    whole = payload_fingerprints(pa.array(texts))
    assert len(set(whole.tolist())) == 300
    # alone, in a slice, beside a very long payload: the same value
    assert payload_fingerprints(pa.array(texts[7:8]))[0] == whole[7]
    assert (payload_fingerprints(pa.array(texts).slice(100, 50)) == whole[100:150]).all()
    beside = payload_fingerprints(pa.array([texts[5], "x" * 100_000, None]))
    assert beside[0] == whole[5] and beside[2] == 0 and beside[1] != 0


def test_every_small_change_gives_another_print():
    rng = random.Random(7)
    base = payloads(1)[0]
    original = payload_fingerprints(pa.array([base]))[0]
    changed = set()
    for position in range(len(base)):
        for replacement in rng.sample('0123456789abcdefXYZ ,:"{}', 6):
            if base[position] != replacement:
                changed.add(base[:position] + replacement + base[position + 1 :])
    changed |= {base + " ", base[:-1], " " + base, base.replace("7", "8")}
    changed |= {base[:i] + base[i + 1] + base[i] + base[i + 2 :] for i in range(len(base) - 1)}
    changed.discard(base)
    prints = payload_fingerprints(pa.array(sorted(changed)))
    assert original not in set(prints.tolist())
    assert len(set(prints.tolist())) == len(changed)


def test_a_million_distinct_payloads_have_distinct_prints():
    texts = [f'{{"invoiceNumber":"I{i:07d}","invoiceAmount":{i % 1000}}}' for i in range(1_000_000)]
    prints = payload_fingerprints(pa.array(texts))
    assert len(np.unique(prints)) == 1_000_000


def make_legacy_journal(tmp_path, kind_payloads: dict[str, list[bytes]], api: str) -> None:
    """A journal as payor wrote it before schema 3: BLAKE2b fingerprints, user_version 2."""
    from payor_cli.send.journal import account_id

    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    with sqlite3.connect(state / "journal.sqlite") as db:
        db.execute(
            "CREATE TABLE scopes (id INTEGER PRIMARY KEY, target TEXT NOT NULL, api TEXT NOT NULL,"
            " account TEXT NOT NULL, kind TEXT NOT NULL, UNIQUE (target, api, account, kind))"
        )
        db.execute(
            "CREATE TABLE accepted (scope INTEGER NOT NULL, key TEXT NOT NULL, fingerprint"
            " INTEGER NOT NULL, remote_id TEXT, PRIMARY KEY (scope, key)) WITHOUT ROWID"
        )
        for scope, (kind, texts) in enumerate(kind_payloads.items(), start=1):
            db.execute(
                "INSERT INTO scopes VALUES (?, 'payorcrm', ?, ?, ?)",
                (scope, api, account_id("test-key-5f2c"), kind),
            )
            key = "customerno" if kind == "customers" else "invoiceNumber"
            db.executemany(
                "INSERT INTO accepted VALUES (?, ?, ?, NULL)",
                [
                    (scope, json.loads(t)[key], int(p))
                    for t, p in zip(texts, legacy_fingerprints(texts), strict=True)
                ],
            )
        db.execute("PRAGMA user_version = 2")


def test_a_journal_of_an_older_payor_knows_its_rows_once_then_holds_todays_prints(
    tmp_path, payor, files, sandbox_server, upload
):
    customers, invoices, mapping = files(250)
    server = sandbox_server()
    args = ("all", "--customers", customers, "--invoices", invoices, "--mapping", mapping)
    run, _ = upload(server, *args)
    assert run.code == 0, run.text
    expected = {}
    for kind, source in (("customers", customers), ("invoices", invoices)):
        out = tmp_path / f"{kind}.jsonl"
        dry = payor("upload", kind, source, "--mapping", mapping, "--dry-run", "--payloads", out)
        assert dry.code == 0, dry.text
        expected[kind] = out.read_bytes().splitlines()  # the very bytes a run sends
    (tmp_path / "state" / "journal.sqlite").unlink()
    make_legacy_journal(tmp_path, expected, server.url)
    before = server.stats()["requests"]
    run, report = upload(server, *args)
    assert run.code == 0, run.text
    assert server.stats()["requests"] == before  # nothing sent: the old journal knew it all
    assert report["invoices"]["rows_unchanged"] == 250
    with sqlite3.connect(tmp_path / "state" / "journal.sqlite") as db:
        kinds = dict(db.execute("SELECT print_kind, count(*) FROM accepted GROUP BY print_kind"))
        assert db.execute("PRAGMA user_version").fetchone() == (3,)
    assert kinds == {2: 270}  # 20 customers and 250 invoices, all with today's fingerprint
    run, report = upload(server, *args)
    assert run.code == 0, run.text
    assert report["invoices"]["rows_unchanged"] == 250 and server.stats()["requests"] == before
