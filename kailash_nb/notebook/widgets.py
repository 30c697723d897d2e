"""Widgets (a progress bar, the ``%kailash explore`` form) that degrade to static output headless.

No kernel can see whether a frontend renders widgets, so the choice is made by ``KAILASH_NB_WIDGETS``:
``1`` widgets, ``0`` static output; unset means widgets only when the kernel was started by a Jupyter
server for a notebook session (``JPY_SESSION_NAME`` is set), never under nbval, nbclient or nbconvert.
"""

from __future__ import annotations

import ast
import asyncio
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import WIDGETS_ENV
from .display import render, short, table

if TYPE_CHECKING:
    from .session import NotebookSession

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def widgets_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether to show live widgets (see the module docstring for the rule)."""
    env = os.environ if environ is None else environ
    setting = env.get(WIDGETS_ENV)
    if setting is not None:
        value = setting.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ValueError(f"{WIDGETS_ENV}={setting!r}: expected 1 (widgets), 0 (static output) or unset (auto)")
    return bool(env.get("JPY_SESSION_NAME"))


class Progress:
    """A progress bar while work runs: an ``IntProgress`` widget, or nothing when static."""

    def __init__(self, total: int, description: str) -> None:
        self.total = total
        self.done = 0
        self._bar: Any = None
        if widgets_enabled():
            import ipywidgets
            from IPython.display import display

            self._bar = ipywidgets.IntProgress(value=0, min=0, max=total, description=description)
            display(self._bar)

    def advance(self, step: int = 1) -> None:
        self.done += step
        if self._bar is not None:
            self._bar.value = self.done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class StaticExplore:
    """What ``%kailash explore`` shows without a widget frontend: the inputs a form would edit."""

    def __init__(self, workflow: str, inputs: Mapping[str, Any]) -> None:
        self.workflow = workflow
        self.inputs = dict(inputs)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        rows = [{"input": k, "value": short(v)} for k, v in sorted(self.inputs.items())]
        notes = [f"static view: set {WIDGETS_ENV}=1 for a form; run with %kailash run {self.workflow} --inputs ..."]
        return render(f"explore {self.workflow!r}: inputs", table(rows, ["input", "value"]), notes,
                      empty="(no inputs)")

    def __repr__(self) -> str:
        return self._repr_mimebundle_()[0]["text/plain"]


def explore(session: NotebookSession, workflow: str, inputs: Mapping[str, Any] | None) -> Any:
    """A form with one text field per input (Python literals) and a Run button, or its static view.

    The button's handler schedules the run as a task on the kernel's running loop (the one that
    delivers widget messages), so the workflow runs where its resources live.
    """
    values = dict(inputs if inputs is not None else session.last_inputs.get(workflow, {}))
    if not widgets_enabled():
        return StaticExplore(workflow, values)
    import ipywidgets
    from IPython.display import display

    fields = {name: ipywidgets.Text(value=repr(value), description=name) for name, value in sorted(values.items())}
    button = ipywidgets.Button(description=f"Run {workflow}")
    output = ipywidgets.Output()

    async def run_once() -> None:
        output.clear_output()
        try:
            parsed = {name: ast.literal_eval(field.value) for name, field in fields.items()}
        except (ValueError, SyntaxError) as exc:
            with output:
                print(f"inputs must be Python literals: {exc}")
            return
        try:
            result = await session.run(workflow, parsed)
        except Exception as exc:  # shown in the form: there is no cell to fail
            with output:
                print(f"run of {workflow!r} failed: {type(exc).__name__}: {exc}")
            return
        with output:
            display(result)

    def on_click(_: Any) -> None:
        task = asyncio.get_running_loop().create_task(run_once())
        _running.add(task)
        task.add_done_callback(_running.discard)

    button.on_click(on_click)
    return ipywidgets.VBox([*fields.values(), button, output])


_running: set[asyncio.Task[None]] = set()
