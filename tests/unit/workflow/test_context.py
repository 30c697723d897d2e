"""``running_node``: the seam that tells call trackers which node is running."""

import asyncio

import pytest

from kailash_nb.workflow import current_node_id, running_node


def test_running_node_binds_the_node_inside_the_block_only():
    assert current_node_id() is None
    with running_node("fetch"):
        assert current_node_id() == "fetch"
        with running_node("inner"):
            assert current_node_id() == "inner"
        assert current_node_id() == "fetch"
    assert current_node_id() is None


def test_running_node_is_restored_when_the_block_raises():
    with pytest.raises(KeyError), running_node("fetch"):
        raise KeyError("k")
    assert current_node_id() is None


def test_tasks_started_inside_the_block_see_the_node():
    async def main():
        with running_node("fan_out"):
            child = asyncio.create_task(asyncio.sleep(0, result=None))
            seen = await asyncio.create_task(_current())
            await child
        return seen, current_node_id()

    assert asyncio.run(main()) == ("fan_out", None)


async def _current() -> str | None:
    return current_node_id()


def test_running_node_is_per_task():
    async def node(name: str, gate: asyncio.Event) -> str | None:
        with running_node(name):
            await gate.wait()
            return current_node_id()

    async def main():
        gate = asyncio.Event()
        tasks = [asyncio.create_task(node(name, gate)) for name in ("a", "b")]
        await asyncio.sleep(0)
        gate.set()
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == ["a", "b"]
