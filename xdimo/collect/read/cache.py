"""A per-run cache, so re-collecting a study whose runs have not changed reads no metrics at all.

An entry holds what parsing produced plus the signature (size, mtime_ns) of every file it came from; a
changed, added or removed file changes the signature and the run is parsed again. Entries are small JSON
files written atomically; a cache folder that cannot be written just means no cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from xdimo.atomic import replacing

VERSION = 10  # bump when what is cached changes shape or meaning


def file_sig(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def signature(paths: Iterable[Path]) -> list[Any]:
    return [[str(p), file_sig(p)] for p in paths]


class Cache:
    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / (hashlib.sha1(key.encode()).hexdigest()[:20] + ".json")

    def get(self, key: str, sig: list[Any]) -> dict[str, Any] | None:
        if self.root is None:
            return None
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entry = None
        if isinstance(entry, dict) and entry.get("v") == VERSION and entry.get("key") == key \
                and entry.get("sig") == sig:
            self.hits += 1
            return entry.get("data")
        self.misses += 1
        return None

    def put(self, key: str, sig: list[Any], data: dict[str, Any]) -> None:
        if self.root is None:
            return
        path = self._path(key)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with replacing(path) as tmp:
                tmp.write_text(json.dumps({"v": VERSION, "key": key, "sig": sig, "data": data}), encoding="utf-8")
        except OSError:
            pass  # a read-only or full disk: collect still works, only slower
