"""The journal's tables, and how a journal of an older payor is brought up to date."""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 3
LEGACY_PRINTS, PRINTS = 1, 2
"""print_kind: BLAKE2b (schemas 1 and 2), or fingerprint.payload_fingerprints."""
V1_TARGET = "payorcrm"
"""The API of every scope of a version 1 journal: payor knew no other when it wrote them."""


def migrate(db: sqlite3.Connection) -> None:
    """Create the tables, or bring a journal of an older payor up to date (inside a write
    transaction): version 1 had no target (all its scopes are PayorCRM's) and no remote ids;
    before version 3 every fingerprint was BLAKE2b."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "scopes" in tables and version < 2:
        db.execute("ALTER TABLE scopes RENAME TO scopes_v1")
    db.execute(
        "CREATE TABLE IF NOT EXISTS scopes (id INTEGER PRIMARY KEY, target TEXT NOT NULL,"
        " api TEXT NOT NULL, account TEXT NOT NULL, kind TEXT NOT NULL,"
        " UNIQUE (target, api, account, kind))"
    )
    if "scopes" in tables and version < 2:
        db.execute(
            "INSERT INTO scopes (id, target, api, account, kind)"
            " SELECT id, ?, api, account, kind FROM scopes_v1",
            (V1_TARGET,),
        )
        db.execute("DROP TABLE scopes_v1")
    db.execute(
        "CREATE TABLE IF NOT EXISTS accepted (scope INTEGER NOT NULL,"
        " key TEXT NOT NULL, fingerprint INTEGER NOT NULL, remote_id TEXT,"
        f" print_kind INTEGER NOT NULL DEFAULT {PRINTS},"
        " PRIMARY KEY (scope, key)) WITHOUT ROWID"
    )
    if "accepted" in tables and version < 3:
        columns = {row[1] for row in db.execute("PRAGMA table_info(accepted)")}
        if "remote_id" not in columns:
            db.execute("ALTER TABLE accepted ADD COLUMN remote_id TEXT")
        if "print_kind" not in columns:  # the rows there are BLAKE2b's
            db.execute(
                f"ALTER TABLE accepted ADD COLUMN print_kind INTEGER NOT NULL DEFAULT {LEGACY_PRINTS}"
            )
    db.execute(
        "CREATE TABLE IF NOT EXISTS intents (scope INTEGER NOT NULL, key TEXT NOT NULL,"
        " PRIMARY KEY (scope, key)) WITHOUT ROWID"
    )
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
