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
    """A progress bar while work runs: an ``IntProgress`` widget, or nothing when static.

    The bar shows its whole label (``description_width: initial``). ``close()`` replaces the bar's
    output with one static line (``bench 'etl': 40 of 40 runs``) and closes the widget, so that a
    saved notebook keeps that line and no view of a widget that no longer exists.
    """

    def __init__(self, total: int, description: str) -> None:
        self.total = total
        self.description = description
        self.done = 0
        self._bar: Any = None
        self._handle: Any = None
        if widgets_enabled():
            import ipywidgets
            from IPython.display import display

            self._bar = ipywidgets.IntProgress(value=0, min=0, max=total, description=description,
                                               style={"description_width": "initial"})
            self._handle = display(self._bar, display_id=True)

    def advance(self, step: int = 1) -> None:
        self.done += step
        if self._bar is not None:
            self._bar.value = self.done

    def summary(self) -> str:
        """The static line left in place of the bar."""
        return f"{self.description}: {self.done} of {self.total} runs"

    def close(self) -> None:
        if self._bar is not None:
            self._handle.update({"text/plain": self.summary()}, raw=True)
            self._bar.close()
            self._bar = self._handle = None


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
    """A form with one text field per input (Python literals) and a Run button, or its static view."""
    values = dict(inputs if inputs is not None else session.last_inputs.get(workflow, {}))
    if not widgets_enabled():
        return StaticExplore(workflow, values)
    return ExploreForm(session, workflow, values).widget


class ExploreForm:
    """The ``%kailash explore`` form: edit the inputs, press Run, read the result under the form.

    The button's handler runs the workflow as a task of the session on the kernel's loop (the one that
    delivers widget messages), so it runs where its resources live, and ``%kailash reset`` cancels it
    if it is still running. That task runs after the click's message has been handled, when the
    frontend no longer routes the kernel's output to this form (``with output:`` would lose it), so
    the result, an error and the running state are written as widget state: the ``Output`` widget's
    ``outputs`` and the button's ``description``, ``disabled`` and ``icon``.
    """

    def __init__(self, session: NotebookSession, workflow: str, values: Mapping[str, Any]) -> None:
        import ipywidgets

        self.session = session
        self.workflow = workflow
        self.fields = {
            name: ipywidgets.Text(value=repr(value), description=name) for name, value in sorted(values.items())
        }
        self.idle_label = f"Run {workflow}"
        self.button = ipywidgets.Button(description=self.idle_label, icon="play")
        self.output = ipywidgets.Output()
        self.button.on_click(self._clicked)
        self.widget = ipywidgets.VBox([*self.fields.values(), self.button, self.output])
        self.task: asyncio.Task[Any] | None = None

    def _clicked(self, _: Any) -> None:
        if self.task is not None and not self.task.done():
            return  # one run at a time; the button is disabled meanwhile
        self.task = self.session.start(self.run())

    def inputs(self) -> dict[str, Any]:
        """The fields' values as Python literals; a ``ValueError`` names the field that is not one."""
        parsed = {}
        for name, field in self.fields.items():
            try:
                parsed[name] = ast.literal_eval(field.value)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
                reason = exc.msg if isinstance(exc, SyntaxError) else str(exc) or type(exc).__name__
                raise ValueError(
                    f"input {name!r}: {field.value!r} is not a Python literal ({reason}); "
                    "write it as in Python: 3, 0.5, 'text', [1, 2], {'k': 'v'}, None"
                ) from None
        return parsed

    async def run(self) -> None:
        """One press of Run: show the running state, run, then show the result or what went wrong."""
        output, button = self.output, self.button
        output.outputs = ()
        try:
            inputs = self.inputs()
        except ValueError as exc:
            output.append_stderr(f"{exc}\n")
            return
        button.disabled, button.description, button.icon = True, f"Running {self.workflow}…", "spinner spin"
        try:
            result = await self.session.run(self.workflow, inputs)
        except asyncio.CancelledError:
            output.append_stderr(f"run of {self.workflow!r} cancelled (the session was reset)\n")
            raise
        except Exception as exc:  # shown in the form: there is no cell to fail
            output.append_stderr(f"run of {self.workflow!r} failed: {type(exc).__name__}: {exc}\n")
        else:
            output.append_display_data(result)
        finally:
            button.disabled, button.description, button.icon = False, self.idle_label, "play"

