"""The ingestion token bucket's edges: requests larger than the burst, and refunds of tokens
for samples that were refused or could not be stored."""

from __future__ import annotations

from gateway.app_keys import LAYOUT
from gateway.limits.rate import NEVER, RateLimiter
from gateway.storage.clickhouse import ClickHouse
from tests.conftest import start_gateway
from tests.limits.helpers import T, discarded, many, metrics, write
from tests.limits.test_enforcement import limited
from tests.limits.test_tracker import Clock


def test_a_request_larger_than_the_bucket_is_never_and_takes_nothing() -> None:
    limiter = RateLimiter(clock=Clock(0.0))
    assert limiter.take("a", 201, rate=100, burst=200) == NEVER
    assert limiter.take("a", 200, rate=100, burst=200) == 0.0  # the bucket was left full
    # Workers share the burst: each process' bucket holds its part.
    shared = RateLimiter(share=2, clock=Clock(0.0))
    assert shared.capacity(200) == 100
    assert shared.take("a", 101, rate=100, burst=200) == NEVER
    assert shared.take("a", 100, rate=100, burst=200) == 0.0


def test_refunds_give_tokens_back_up_to_the_bucket_size() -> None:
    clock = Clock(0.0)
    limiter = RateLimiter(clock=clock)
    assert limiter.take("a", 150, rate=1, burst=200) == 0.0
    assert limiter.take("a", 100, rate=1, burst=200) > 0  # 50 left
    limiter.refund("a", 100, rate=1, burst=200)
    assert limiter.take("a", 150, rate=1, burst=200) == 0.0  # 150 left after the refund
    limiter.refund("a", 10_000, rate=1, burst=200)
    assert limiter.take("a", 201, rate=1, burst=200) == NEVER
    assert limiter.take("a", 200, rate=1, burst=200) == 0.0  # capped at the bucket's size
    limiter.refund("unknown", 10, rate=1, burst=200)  # no bucket yet: nothing to give back
    assert limiter.take("unknown", 200, rate=1, burst=200) == 0.0


async def test_a_request_larger_than_the_burst_is_refused_for_good(chdb_dsn: str) -> None:
    running = await start_gateway(limited(chdb_dsn, ingestion_rate=5, ingestion_burst_size=20))
    try:
        status, text, headers = await write(running, many(21))
        assert status == 400, text  # not 429: retrying could never succeed
        assert "Retry-After" not in headers
        assert (
            'the request of 21 samples is larger than the ingestion burst size of 20 samples '
            'for tenant "a" (ingestion_burst_size)'
        ) in text
        assert "(err-gateway-ingestion-burst-exceeded)" in text
        values = await metrics(running)
        assert discarded(values, "a", "ingestion_burst_exceeded") == 21
        assert discarded(values, "a", "rate_limited") == 0
        assert values[
            'gateway_rejected_requests_total{reason="ingestion_burst_exceeded",status="400"}'
        ] == 1
        assert (await write(running, many(20)))[0] == 204  # the bucket is untouched
    finally:
        await running.runner.cleanup()


async def test_refused_samples_do_not_use_up_the_rate(chdb_dsn: str) -> None:
    # A refill of 1 sample per 100 s: nothing refills during the test.
    running = await start_gateway(limited(
        chdb_dsn, ingestion_rate=0.01, ingestion_burst_size=10, max_global_series_per_user=2,
    ))
    try:
        status, text, _ = await write(running, many(5))  # 2 stored, 3 over the series budget
        assert status == 400 and "max_global_series_per_user" in text
        # 10 - 2 tokens left: 8 samples of the stored series fit.
        items = many(2, timestamp=T + 1) + many(2, timestamp=T + 2) + many(2, timestamp=T + 3)
        items += many(2, timestamp=T + 4)
        status, text, _ = await write(running, items)
        assert status == 204, text
        assert (await write(running, many(1, timestamp=T + 5)))[0] == 429
    finally:
        await running.runner.cleanup()


async def test_a_write_that_storage_failed_is_not_charged_twice(
    chdb_dsn: str, session_store: ClickHouse
) -> None:
    running = await start_gateway(limited(chdb_dsn, ingestion_rate=0.01, ingestion_burst_size=10))
    samples = running.app[LAYOUT].samples_tables
    try:
        assert (await write(running, many(4)))[0] == 204  # 6 tokens left
        for table in samples:
            await session_store.run(lambda client, t=table: client.command(f"DETACH TABLE {t}"))
        try:
            status, text, _ = await write(running, many(6, timestamp=T + 1))
            assert status == 503, text
        finally:
            for table in samples:
                await session_store.run(
                    lambda client, t=table: client.command(f"ATTACH TABLE {t}")
                )
        # The sender retries the same body: its 6 tokens are still there.
        status, text, _ = await write(running, many(6, timestamp=T + 1))
        assert status == 204, text
        assert (await write(running, many(1, timestamp=T + 2)))[0] == 429  # now they are used
    finally:
        await running.runner.cleanup()
