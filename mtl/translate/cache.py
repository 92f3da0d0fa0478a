"""Translation cache: sqlite, (model_id, source text) -> translation, shared by every file and run.

    with TranslationCache(cache_root() / "translations.sqlite") as cache:
        found = cache.get_many("seq2seq:madlad400-3b-mt@1a2b3c4d5e", ["zapatos rojos"])
        cache.put_many("seq2seq:madlad400-3b-mt@1a2b3c4d5e", {"обувь": "shoes"})

Each `put_many` is one committed transaction, so a run killed mid-way keeps everything but the batch in flight, and
the next run starts where it stopped. WAL mode lets several runs read while one writes.

The key is (model_id, source text) without the source language. The records' language labels are noisy and the
same string is the same query whichever row it sits in: one translation per distinct text keeps the `query -
translation` pairs the model reads consistent across rows, files and tasks, and maximises reuse. The pipeline feeds
each text with the language most of its rows carry.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from mtl.errors import ConfigError

_LOOKUP_CHUNK = 500
"""Texts per SELECT: far below sqlite's bound-parameter limit."""


class TranslationCache:
    """Persistent map (model_id, source) -> translation. `path` ":memory:" gives a cache that lives only as long
    as the object."""

    def __init__(self, path: str | Path):
        try:
            self._open(path)
        except (sqlite3.Error, OSError) as err:
            raise ConfigError(f"translation cache {path}: cannot use it as a cache: {err}") from None

    def _open(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            path = Path(path).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
        # A second run writing to the same cache waits for the first's commit instead of failing.
        self.path, self.conn = str(path), sqlite3.connect(str(path), timeout=60)
        tables = {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "translations" not in tables:  # someone else's database: look, but change nothing
            self.conn.close()
            raise sqlite3.DatabaseError(f"a sqlite database without a translations table (it has "
                                        f"{', '.join(sorted(tables)[:3])})")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")  # one fsync per batch: nothing next to a model's batch time
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS translations (model_id TEXT NOT NULL, source TEXT NOT NULL, "
            "translation TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (model_id, source)) WITHOUT ROWID"
        )
        self.conn.execute("SELECT model_id, source, translation, created FROM translations LIMIT 0")
        self.conn.commit()

    def get_many(self, model_id: str, sources: list[str]) -> dict[str, str]:
        """The cached translations among `sources` (absent ones are missing from the result)."""
        found = {}
        for start in range(0, len(sources), _LOOKUP_CHUNK):
            chunk = sources[start:start + _LOOKUP_CHUNK]
            rows = self.conn.execute(
                f"SELECT source, translation FROM translations WHERE model_id = ? AND source IN "
                f"({','.join('?' * len(chunk))})", [model_id, *chunk],
            )
            found.update(rows)
        return found

    def put_many(self, model_id: str, translations: dict[str, str]) -> None:
        """Store and commit (one transaction)."""
        now = time.time()
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO translations (model_id, source, translation, created) VALUES (?, ?, ?, ?)",
                [(model_id, source, text, now) for source, text in translations.items()],
            )

    def count(self, model_id: str | None = None) -> int:
        if model_id is None:
            return self.conn.execute("SELECT COUNT(*) FROM translations").fetchone()[0]
        return self.conn.execute("SELECT COUNT(*) FROM translations WHERE model_id = ?", [model_id]).fetchone()[0]

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> TranslationCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
