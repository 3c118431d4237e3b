"""The Redis online store: one string per (view version, entity key): the event time (UTC microseconds, 8 bytes
big-endian) followed by the view's msgpack fragment.

A lookup of any number of views is one MGET (one round trip; a batch sends its MGETs in one pipeline), and the
fragments are joined under one array header into the msgpack array the plan decodes. The password comes from the URL or from
LEDGERFLOW_REDIS_PASSWORD and is never put in a message.
"""
from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from engine.featurestore.online import (
    PASSWORD_ENV,
    LookupPlan,
    array_header,
    mask_url,
    now_us,
    null_fragment,
)
from engine.featurestore.registry import FeatureStoreError
from engine.i18n import tr

_VIEW_KEY = re.compile(r"^([0-9a-f]{32})_v[0-9]+$")
_PREFIX = "ledgerflow:fs2:"  # fs2: the fragment format (fs: the JSON documents of before, removed on materialize)
_TS = 8  # bytes of event time before the fragment
_CHUNK = 1000


def _checked(key: str) -> re.Match:
    found = _VIEW_KEY.match(key)
    if not found:
        raise FeatureStoreError(tr("Malformed online key {key!r}", key=key))
    return found


class RedisOnline:
    """Redis backend (see the module docstring)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise FeatureStoreError(tr("Online store {url}: expected redis://host:port/db", url=mask_url(url)))
        self.url = url
        self.shown_url = mask_url(url)
        self._client: Any = None

    def _connect(self) -> Any:
        if self._client is None:
            import redis

            password = None if urlsplit(self.url).password else os.environ.get(PASSWORD_ENV) or None
            client = redis.Redis.from_url(self.url, password=password, socket_timeout=30, socket_connect_timeout=5)
            try:
                client.ping()
            except redis.RedisError as exc:
                client.close()
                raise FeatureStoreError(tr("Cannot reach the Redis online store at {url}: {exc}",
                                           url=self.shown_url, exc=exc)) from None
            self._client = client
        return self._client

    def _errors(self, exc: Exception) -> FeatureStoreError:
        return FeatureStoreError(tr("Redis online store at {url}: {exc}", url=self.shown_url, exc=exc))

    # ---- writing -------------------------------------------------------------------------------------------
    def write(self, entity: str, frames: dict[str, pl.DataFrame]) -> None:
        """Per view version: the new values first (readers never see an empty view), then every other key of the
        view - entities it no longer holds, older versions, the old format - is removed."""
        import redis

        client = self._connect()
        try:
            for key, frame in frames.items():
                view_id = _checked(key).group(1)
                prefix = f"{_PREFIX}{key}:"
                names = frame.select(pl.concat_str(pl.lit(prefix), pl.col("k")))[:, 0].to_list()
                docs = [ts.to_bytes(_TS, "big", signed=True) + v
                        for ts, v in zip(frame["ts"].to_list(), frame["v"].to_list())]
                stale = set(client.scan_iter(match=f"ledgerflow:fs*:{view_id}_v*", count=1000))
                pipe = client.pipeline(transaction=False)
                for i in range(0, len(names), _CHUNK):
                    pipe.mset(dict(zip(names[i:i + _CHUNK], docs[i:i + _CHUNK])))
                pipe.execute()
                stale -= {n.encode() for n in names}
                stale_keys = list(stale)
                for i in range(0, len(stale_keys), _CHUNK):
                    client.unlink(*stale_keys[i:i + _CHUNK])
        except redis.RedisError as exc:
            raise self._errors(exc) from None

    # ---- reading -------------------------------------------------------------------------------------------
    def _prepared(self, plan: LookupPlan) -> tuple[bytes, tuple]:
        """The array header, and per view: (entity index, key prefix, null fragment, ttl in us or None)."""
        if plan.prepared is None:
            plan.prepared = (array_header(sum(v.width for v in plan.views)),
                             tuple((v.entity, f"{_PREFIX}{_checked(v.key).group(0)}:", null_fragment(v.width),
                                    v.ttl_us) for v in plan.views))
        return plan.prepared

    @staticmethod
    def _join(header: bytes, views: tuple, raws: list, now: int) -> bytes | None:
        parts, hit = [header], False
        for (_, _, nulls, ttl), raw in zip(views, raws):
            if raw is None or (ttl is not None and now - int.from_bytes(raw[:_TS], "big", signed=True) > ttl):
                parts.append(nulls)
            else:
                parts.append(raw[_TS:])
                hit = True
        return b"".join(parts) if hit else None

    def read_one(self, plan: LookupPlan, keys: tuple[str | None, ...]) -> bytes | None:
        return self.read_many(plan, [keys])[0]

    def read_many(self, plan: LookupPlan, keys: list[tuple[str | None, ...]]) -> list[bytes | None]:
        import redis

        header, views = self._prepared(plan)
        names = [None if k[ent] is None else prefix + k[ent] for k in keys for ent, prefix, _, _ in views]
        wanted = [n for n in names if n is not None]
        try:
            client = self._client or self._connect()
            if len(wanted) <= _CHUNK:
                got = client.mget(wanted) if wanted else []
            else:
                pipe = client.pipeline(transaction=False)
                for i in range(0, len(wanted), _CHUNK):
                    pipe.mget(wanted[i:i + _CHUNK])
                got = [raw for chunk in pipe.execute() for raw in chunk]
        except redis.RedisError as exc:
            raise self._errors(exc) from None
        values = iter(got)
        raws = [None if n is None else next(values) for n in names]
        now, width = now_us(), len(views)
        return [self._join(header, views, raws[i:i + width], now) for i in range(0, len(raws), width)]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
