"""The ``kailash-nb`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

DEMO_WORKFLOW = (
    ("producer", """
        await asyncio.sleep(0)  # node code is async: top-level await works
        result = {"items": [1, 2, 3], "meta": {"count": 3}}
    """),
    ("processor", """
        print(f"doubling {meta['count']} items")
        result = {"doubled": [x * 2 for x in items], "total": sum(items) * 2}
    """),
)


async def _demo() -> int:
    from .workflow import AsyncLocalRuntime, AsyncWorkflowBuilder

    builder = AsyncWorkflowBuilder("demo")
    for node_id, code in DEMO_WORKFLOW:
        builder.add_async_code(node_id, code)
    workflow = (
        builder.add_connection("producer", "items", "processor", "items")
        .add_connection("producer", "meta", "processor", "meta")
        .build()
    )
    result = await AsyncLocalRuntime().execute_workflow_async(workflow)
    print(result.summary())
    for node_id, output in result.outputs.items():
        print(f"{node_id} -> {json.dumps(output)}")
    for node_id, text in result.logs.items():
        print(f"{node_id} printed: {text.rstrip()}")
    print(f"ran in {result.execution_time * 1e3:.2f} ms")
    return 0 if result.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kailash-nb", description="Notebook testing kit for async workflows.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run a short example workflow and print its result")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return asyncio.run(_demo())
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
