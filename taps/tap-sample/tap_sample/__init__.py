"""tap-sample: the sample streams of target-s3 as an incremental Singer SDK tap.

Streams and schemas come from the SCHEMA messages of a Singer file; records are those of its
RECORD messages. Each stream's first bookmark property is its replication key: with state,
only records newer than the bookmark are emitted, so a rerun resumes where the last run ended.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable

from singer_sdk import Stream, Tap
from singer_sdk import typing as th


def _instant(value: Any) -> datetime:
    """Date-times compare as instants; a value without an offset is UTC."""
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class SampleStream(Stream):
    is_sorted = False

    def __init__(self, tap: Tap, message: dict, records: list[dict]) -> None:
        super().__init__(tap, schema=message["schema"], name=message["stream"])
        self.primary_keys = message.get("key_properties", [])
        bookmarks = message.get("bookmark_properties") or []
        self.replication_key = bookmarks[0] if bookmarks else None
        self._records = records

    def get_records(self, context: dict | None) -> Iterable[dict]:
        start = self.get_starting_replication_key_value(context)
        for record in self._records:
            if start is None or self.replication_key is None:
                yield record
            elif record.get(self.replication_key) and _instant(record[self.replication_key]) > _instant(start):
                yield record


class TapSample(Tap):
    name = "tap-sample"
    config_jsonschema = th.PropertiesList(
        th.Property("path", th.StringType, default="sample_streams/sample.singer",
                    description="Singer file whose SCHEMA and RECORD messages become the streams"),
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        schemas: dict[str, dict] = {}
        records: dict[str, list[dict]] = {}
        with open(self.config.get("path", "sample_streams/sample.singer"), encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                message = json.loads(line)
                if message.get("type") == "SCHEMA":
                    schemas[message["stream"]] = message
                elif message.get("type") == "RECORD":
                    records.setdefault(message["stream"], []).append(message["record"])
        return [SampleStream(self, m, records.get(name, [])) for name, m in schemas.items()]
