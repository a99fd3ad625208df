"""What the service must not lose: items added at run time and interactions posted to it.

The store also records the dataset the served run was trained on, so ``mmgef train --data
STORE.sqlite`` trains on that dataset with the stored items and interactions added
(``mmgef.data.service_data``).

SQLite in WAL mode with ``synchronous=FULL``: a row is on disk before the request is answered,
and a crash (or a kill) loses nothing that was acknowledged. One connection per call, so uvicorn's
worker threads and processes can share the file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from mmgef.errors import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    item TEXT PRIMARY KEY, title TEXT, features TEXT NOT NULL, added REAL NOT NULL);
CREATE TABLE IF NOT EXISTS interactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, item TEXT NOT NULL, ts REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


BOUND_DATA = "SELECT value FROM meta WHERE key = 'data'"


def bound_data(path: Path) -> str | None:
    """The dataset a store's rows extend (None for a store never bound), read without creating or changing the
    file (``sqlite3.DatabaseError`` when it is not a store)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute(BOUND_DATA).fetchone()
    return None if row is None else str(row[0])


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA synchronous=FULL")
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        finally:
            db.close()

    def bind(self, data: str) -> None:
        """Record the dataset (``data.location`` of the served run) the stored rows extend; a store already
        bound to another dataset is refused (its items and interactions would be mixed into the wrong data)."""
        with self._connect() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('data', ?)", (data,))
            bound = db.execute(BOUND_DATA).fetchone()[0]
        if bound != data:
            raise ConfigError(f"{self.path}: this store extends dataset {bound}, not {data}. "
                              "Fix: pass another --db for this run.")

    def add_items(self, items: list[tuple[str, dict[str, list[float]], str | None]]) -> None:
        now = time.time()
        with self._connect() as db:
            db.executemany("INSERT INTO items (item, title, features, added) VALUES (?, ?, ?, ?)",
                           [(item, title, json.dumps(features), now) for item, features, title in items])

    def items(self) -> list[tuple[str, dict[str, list[float]], str | None]]:
        """Added items in the order they were added."""
        with self._connect() as db:
            rows = db.execute("SELECT item, features, title FROM items ORDER BY rowid").fetchall()
        return [(item, json.loads(features), title) for item, features, title in rows]

    def item_count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def add_interaction(self, user: str, item: str) -> int:
        with self._connect() as db:
            cur = db.execute("INSERT INTO interactions (user, item, ts) VALUES (?, ?, ?)", (user, item, time.time()))
        return int(cur.lastrowid or 0)

    def interactions(self) -> pd.DataFrame:
        """Every stored interaction as ``user_id, item_id, timestamp`` (the native interactions.csv columns)."""
        with self._connect() as db:
            rows = db.execute("SELECT user, item, ts FROM interactions ORDER BY id").fetchall()
        return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
