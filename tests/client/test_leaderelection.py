"""Lease-based leader election: one leader, takeover after expiry, fenced writes."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from controlplane.client.leaderelection import LeaderElector, LeaseRecord, format_micro_time
from controlplane.client.resources import ResourceClient
from controlplane.kube.errors import APIError
from controlplane.kube.resources import CONFIGMAPS, LEASES

from . import cluster, cm, eventually, run

# Small timers: the record says 1 s (whole seconds), renewals every 0.1 s.
TIMERS: dict[str, Any] = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1}
NS, NAME = "kube-system", "kube-controller-manager"


def elector(client: ResourceClient, identity: str, **kw: Any) -> LeaderElector:
    return LeaderElector(client, NS, NAME, identity, **{**TIMERS, **kw})


async def lease_record(client: ResourceClient) -> LeaseRecord:
    return LeaseRecord.of(await client.get(LEASES, NS, NAME))


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_two_candidates_exactly_one_leads() -> None:
    """Both race for an absent Lease: one holds it, the other sees it as the leader."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            a, b = elector(client, "a"), elector(client, "b")
            tasks = [asyncio.ensure_future(e.run()) for e in (a, b)]
            try:
                await eventually(lambda: a.is_leader or b.is_leader, "a leader")
                leader, other = (a, b) if a.is_leader else (b, a)
                record = await lease_record(client)
                assert record.holder == leader.identity
                assert record.transitions == 0
                assert record.lease_duration_seconds == 1
                # Over several renewals, leadership stays put and is never shared.
                for _ in range(10):
                    await asyncio.sleep(0.1)
                    assert leader.is_leader and not other.is_leader
                assert other.leader == leader.identity
                assert (await lease_record(client)).holder == leader.identity
            finally:
                for t in tasks:
                    await stop(t)

    run(body())


def test_takeover_after_the_leader_stops_renewing_and_old_term_is_fenced() -> None:
    """The leader stops (as a paused or crashed process would): after the lease duration
    the other candidate takes the Lease with leaseTransitions + 1, and a write fenced with
    the old term is refused."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            started: list[str] = []
            stopped: list[str] = []

            async def lead(name: str) -> None:
                started.append(name)
                await asyncio.Event().wait()

            a = elector(
                client,
                "a",
                on_started_leading=lambda: lead("a"),
                on_stopped_leading=lambda: stopped.append("a"),
            )
            task_a = asyncio.ensure_future(a.run())
            await eventually(lambda: a.is_leader, "a leading")
            old_term = a.fence()
            assert (old_term.holder, old_term.transitions) == ("a", 0)
            await client.create(CONFIGMAPS, "default", cm("by-a"), fence=old_term)
            await eventually(lambda: started == ["a"], "a's work started")

            new_leaders: list[str] = []
            b = elector(client, "b", on_new_leader=new_leaders.append)
            task_b = asyncio.ensure_future(b.run())
            try:
                await eventually(lambda: new_leaders == ["a"], "b sees a leading")
                await stop(task_a)  # no release: the Lease must expire
                assert stopped == ["a"]
                assert not a.is_leader
                await eventually(lambda: b.is_leader, "b taking over")
                record = await lease_record(client)
                assert (record.holder, record.transitions) == ("b", 1)
                assert b.fence().transitions == 1

                with pytest.raises(APIError) as info:
                    await client.create(CONFIGMAPS, "default", cm("late-a"), fence=old_term)
                assert (info.value.code, info.value.reason) == (409, "Conflict")
                await client.create(CONFIGMAPS, "default", cm("by-b"), fence=b.fence())
            finally:
                await stop(task_b)

    run(body())


def test_release_on_cancel_hands_over_at_once() -> None:
    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            a = elector(client, "a", release_on_cancel=True, lease_duration=30.0)
            task_a = asyncio.ensure_future(a.run())
            await eventually(lambda: a.is_leader, "a leading")
            await stop(task_a)
            record = await lease_record(client)
            assert record.holder == ""
            assert record.lease_duration_seconds == 1
            b = elector(client, "b", lease_duration=30.0)
            task_b = asyncio.ensure_future(b.run())
            try:
                await eventually(lambda: b.is_leader, "b leading")  # without waiting 30 s
                assert (await lease_record(client)).transitions == 1
            finally:
                await stop(task_b)

    run(body())


def test_leader_steps_down_when_it_cannot_renew() -> None:
    """No master answers: the renewals fail, and after renew_deadline the leader stops
    leading, cancels its work and returns."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client(timeout=0.2, retry_for=0.2)
            cancelled = asyncio.Event()

            async def work() -> None:
                try:
                    await asyncio.Event().wait()
                finally:
                    cancelled.set()

            a = elector(client, "a", on_started_leading=work)
            task_a = asyncio.ensure_future(a.run())
            await eventually(lambda: a.is_leader, "a leading")
            await c.stop(0)
            await asyncio.wait_for(task_a, 20)  # run() returns on its own
            assert not a.is_leader
            assert cancelled.is_set()

    run(body())


def test_leader_renews_and_keeps_its_term() -> None:
    """Renewal moves renewTime, keeps acquireTime and leaseTransitions."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            a = elector(client, "a")
            task = asyncio.ensure_future(a.run())
            try:
                await eventually(lambda: a.is_leader, "a leading")
                first = await lease_record(client)

                async def renewed() -> bool:
                    return (await lease_record(client)).renew_time != first.renew_time

                await eventually(renewed, "a renewal")
                now = await lease_record(client)
                assert now.acquire_time == first.acquire_time
                assert (now.holder, now.transitions) == ("a", 0)
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", now.renew_time)
            finally:
                await stop(task)

    run(body())


def test_fence_before_leading_is_an_error() -> None:
    async def body() -> None:
        async with cluster() as c:
            with pytest.raises(RuntimeError, match="never held"):
                elector(c.client(), "a").fence()

    run(body())


@pytest.mark.parametrize(
    ("timers", "message"),
    [
        ({"lease_duration": 1.0, "renew_deadline": 1.0}, "lease_duration"),
        ({"renew_deadline": 0.1, "retry_period": 0.1}, "renew_deadline"),
    ],
    ids=["lease-not-above-deadline", "deadline-not-above-retry"],
)
def test_bad_timers_name_the_parameter(timers: dict[str, float], message: str) -> None:
    async def body() -> None:
        async with cluster() as c:
            with pytest.raises(ValueError, match=message):
                elector(c.client(), "a", **timers)

    run(body())


def test_micro_time_format() -> None:
    t = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert format_micro_time(t) == "2024-05-01T10:00:00.123456Z"
