"""The HTML report of ``kailash-nb check``, from results built by hand (no kernel): what its reader must find."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from kailash_nb.runner.cells import CellId, CellOptions
from kailash_nb.runner.compare import OutputDifference
from kailash_nb.runner.images import ImageDifference
from kailash_nb.runner.report import CONTENT_SECURITY_POLICY, REPORT_FILE, write_report
from kailash_nb.runner.results import CellResult, NotebookResult, Status
from kailash_nb.runner.textdiff import side_by_side

REPO = Path(__file__).resolve().parents[3]
PATH = "notebooks/02_workflows.ipynb"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PNG_2 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
STORED_TABLE = "node 'processor' of workflow 'notebook': output\n   key     value\ndoubled [2, 4, 6]"
NEW_TABLE = "node 'processor' of workflow 'notebook': output\n   key     value\ndoubled [3, 6, 9]"


# -- results, as results.judge makes them ------------------------------------------------------------------------

def stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def shown(plain: str, html: str | None = None, png: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"text/plain": plain}
    if html is not None:
        data["text/html"] = html
    if png is not None:
        data["image/png"] = png
    return {"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": data}


def error(ename: str, evalue: str, *lines: str) -> dict[str, Any]:
    traceback = ["\x1b[0;31m----> 1\x1b[0m x", *lines, f"{ename}: {evalue}"]
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": traceback}


def cell(position: int, label: str, status: Status = "passed", *, path: str = PATH, source: str | None = None,
         **fields: Any) -> CellResult:
    return CellResult(CellId(path, position, label), status, source if source is not None else f"# {label}",
                      CellOptions(), **fields)


def changed_processor(path: str = PATH, position: int = 9) -> CellResult:
    """An output-only change: nothing raised, the node just computes another value."""
    stored, new = shown(STORED_TABLE), shown(NEW_TABLE)
    return cell(position, "node processor", "changed", path=path,
                source="%%kailash processor items=producer.items\nresult = {'doubled': [x * 3 for x in items]}",
                stored_outputs=(stored,), new_outputs=(new,),
                differences=(OutputDifference("text/plain", (STORED_TABLE,), (NEW_TABLE,)),))


def raised_key_error(path: str = PATH, position: int = 12) -> CellResult:
    return cell(position, "run = %kailash run", "raised", path=path,
                new_outputs=(error("KeyError", "'x'", "\x1b[0;32mFile <node consumer>:2\x1b[0m"),))


def notebook(*cells: CellResult, path: str = PATH, **fields: Any) -> NotebookResult:
    return NotebookResult(path, tuple(cells), seconds=fields.pop("seconds", 1.5), **fields)


def passing(path: str = PATH) -> NotebookResult:
    return notebook(cell(2, "%load_ext kailash_nb", path=path), cell(4, "node producer", path=path), path=path)


def report(tmp_path: Path, notebooks: Sequence[NotebookResult], *, seconds: float = 6.9,
           command: str = "kailash-nb check notebooks") -> Page:
    written = write_report(notebooks, tmp_path / "report", seconds=seconds, command=command)
    assert written == tmp_path / "report" / REPORT_FILE
    return Page.parse(written.read_text(encoding="utf-8"))


# -- the page, parsed --------------------------------------------------------------------------------------------

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    children: list[Element | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        return "".join(child if isinstance(child, str) else child.text() for child in self.children)

    def iter(self) -> Iterator[Element]:
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        return [e for e in self.iter() if (tag is None or e.tag == tag) and (cls is None or cls in e.classes)]

    def one(self, tag: str | None = None, cls: str | None = None) -> Element:
        found = self.all(tag, cls)
        assert len(found) == 1, f"expected one <{tag or '*'} class={cls}>, found {len(found)}"
        return found[0]


@dataclass
class Page(Element):
    source: str = ""

    @classmethod
    def parse(cls, source: str) -> Page:
        builder = _Builder()
        builder.feed(source)
        builder.close()
        return cls("#document", {}, builder.root.children, source)

    def target(self, link: Element) -> Element:
        """The element a ``<a href="#id">`` leads to."""
        href = link.attrs.get("href") or ""
        assert href.startswith("#"), f"not a link within the page: {href!r}"
        return self.by_id(href[1:])

    def by_id(self, anchor: str) -> Element:
        found = [e for e in self.iter() if e.attrs.get("id") == anchor]
        assert len(found) == 1, f"expected one element with id {anchor!r}, found {len(found)}"
        return found[0]

    def cell(self, name: str) -> Element:
        """The section or line of the cell called ``name`` (``cell 9: node processor``)."""
        found = [e for e in self.iter() if "cell" in e.classes and any(
            n.text().strip() == name for n in e.all(cls="cell-name"))]
        assert len(found) == 1, f"expected one cell named {name!r}, found {len(found)}"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert any(e.tag == tag for e in self.stack), f"</{tag}> closes nothing"
        while self.stack.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def squeeze(text: str) -> str:
    return " ".join(text.split())


# -- the summary -------------------------------------------------------------------------------------------------

def test_the_summary_lists_each_failing_cell_by_name_with_what_happened_and_a_link_to_it(tmp_path):
    other = "notebooks/05_cache.ipynb"
    page = report(tmp_path, [notebook(cell(2, "%load_ext kailash_nb"), changed_processor(), raised_key_error()),
                             notebook(raised_key_error(other, 3), path=other)])

    lines = page.by_id("summary").one("ol", "failures").all("li")
    assert [squeeze(line.text()) for line in lines] == [
        f"changed {PATH}::cell 9: node processor text/plain changed",
        f"raised {PATH}::cell 12: run = %kailash run raised KeyError: 'x'",
        f"raised {other}::cell 3: run = %kailash run raised KeyError: 'x'",
    ]
    assert [line.one("a").text() for line in lines] == [
        f"{PATH}::cell 9: node processor",
        f"{PATH}::cell 12: run = %kailash run",
        f"{other}::cell 3: run = %kailash run",
    ]
    targets = [page.target(line.one("a")) for line in lines]
    assert targets[:2] == [page.cell("cell 9: node processor"), page.cell("cell 12: run = %kailash run")]
    assert all(target.tag == "section" and "failing" in target.classes for target in targets)
    assert f"{other}::cell 3: run = %kailash run" in targets[2].text()


def test_the_summary_gives_the_command_the_time_and_the_cells_per_status(tmp_path):
    skipped = cell(5, "slow()", "skipped", reason="NBVAL_SKIP")
    page = report(tmp_path, [notebook(cell(2, "a = 1"), changed_processor(), raised_key_error(), skipped)],
                  seconds=83.4, command="kailash-nb check notebooks --workers 2")

    facts = squeeze(page.by_id("summary").one("dl", "facts").text())
    assert "command kailash-nb check notebooks --workers 2" in facts
    assert "time 1 min 23 s" in facts
    assert "cells 1 changed 1 raised 1 skipped 1 passed" in facts
    assert squeeze(page.one("h1").text()) == "FAILED 2 cells failed in 1 of 1 notebook"
    assert page.one("title").text().startswith("FAILED")


def test_a_passing_run_says_so_and_still_lists_the_notebooks(tmp_path):
    other = "notebooks/05_cache.ipynb"
    skipped = cell(6, "slow()", "skipped", path=other, reason="NBVAL_SKIP")
    page = report(tmp_path, [passing(), notebook(cell(3, "x = 1", path=other), skipped, path=other)])

    assert squeeze(page.one("h1").text()) == "PASSED 3 cells of 2 notebooks passed (1 skipped)"
    assert page.one("title").text().startswith("passed")
    assert not page.all("ol", "failures") and not page.all(cls="failing")
    rows = page.one("table", "notebooks").all("tr")
    assert [squeeze(row.text()) for row in rows] == [
        f"passed {PATH} 2 cells passed 1.5 s",
        f"passed {other} 1 cell passed (1 skipped) 1.5 s",
    ]
    assert [page.target(row.one("a")).attrs["class"] for row in rows] == ["notebook passed", "notebook passed"]


def test_a_notebook_that_could_not_run_is_a_failure_in_the_summary(tmp_path):
    page = report(tmp_path, [notebook(path="notebooks/broken.ipynb", error="not valid JSON: line 3")])

    line = page.one("ol", "failures").one("li")
    assert line.one("span", "badge").text() == "error"
    assert "notebooks/broken.ipynb" in line.text() and "could not run: not valid JSON: line 3" in line.text()
    section = page.target(line.one("a"))
    assert "This notebook could not be run: not valid JSON: line 3" in squeeze(section.text())
    assert squeeze(page.one("h1").text()) == "FAILED 1 notebook could not run in 1 of 1 notebook"
    assert "Not a regression: none of its cells was compared." in squeeze(section.text())


def test_the_kernels_own_output_is_in_the_report_only_for_a_notebook_that_failed(tmp_path):
    quiet = notebook(cell(2, "%load_ext kailash_nb"), path="notebooks/01.ipynb", kernel_output="NOISE AT EXIT\n")
    died = notebook(path="notebooks/07.ipynb", error="the kernel could not bind its port (3 tries)",
                    kernel_output="Traceback (most recent call last):\nZMQError: Address already in use\n")
    changed = notebook(changed_processor(), kernel_output="a warning of the kernel's own\n")
    page = report(tmp_path, [quiet, died, changed])

    shown_outputs = [squeeze(block.text()) for block in page.all("details", "kernel-output")]
    assert shown_outputs == [
        "what the kernel printed itself (its stderr) Traceback (most recent call last): "
        "ZMQError: Address already in use",
        "what the kernel printed itself (its stderr) a warning of the kernel's own",
    ]
    assert "NOISE AT EXIT" not in page.text()


# -- cells, in place ---------------------------------------------------------------------------------------------

def test_an_output_only_change_is_a_failure_marked_in_place_and_expanded(tmp_path):
    page = report(tmp_path, [notebook(cell(4, "node producer"), changed_processor(), cell(10, "run"))])

    marked = page.cell("cell 9: node processor")
    assert marked.tag == "section" and {"failing", "status-changed"} <= marked.classes
    assert squeeze(marked.one("header").text()).startswith("changed cell 9: node processor text/plain changed")
    assert marked.one("table", "diff")  # the difference is on the page, not behind a click
    assert "kailash-nb update notebooks/02_workflows.ipynb --cell 9" in marked.one(cls="accept").text()
    assert "FAILED" in page.one("h1").text()


def test_passing_cells_are_one_line_each_with_their_source_folded(tmp_path):
    page = report(tmp_path, [notebook(cell(4, "node producer", source="%%kailash producer\nresult = {}",
                                           seconds=0.012), changed_processor())])

    line = page.cell("cell 4: node producer")
    assert line.tag == "details" and "open" not in line.attrs and "compact" in line.classes
    assert squeeze(line.one("summary").text()) == "passed cell 4: node producer 12 ms"
    assert line.one("pre").text() == "%%kailash producer\nresult = {}"


def test_the_cells_of_a_notebook_come_in_order_under_their_headings(tmp_path):
    nb = notebook(cell(2, "%load_ext kailash_nb"), changed_processor(), cell(12, "run"),
                  headings={1: "02 · Workflows", 5: "Cell by cell: `%%kailash`", 11: "Runs", 20: "Summary"})
    page = report(tmp_path, [nb])

    section = page.target(page.one("table", "notebooks").one("a"))
    order = [squeeze(e.text()) for e in section.iter() if e.tag == "h3" or "cell-name" in e.classes]
    assert order == ["02 · Workflows", "cell 2: %load_ext kailash_nb", "Cell by cell: %%kailash",
                     "cell 9: node processor", "Runs", "cell 12: run"]  # "Summary" introduces no cell
    assert [code.text() for code in section.all("h3", "heading")[1].all("code")] == ["%%kailash"]


def test_a_text_difference_is_shown_stored_and_new_side_by_side(tmp_path):
    page = report(tmp_path, [notebook(changed_processor())])

    table = page.cell("cell 9: node processor").one("table", "diff")
    assert [th.text() for th in table.all("th")] == ["stored", "new"]
    changed = table.one("tr", "changed")
    stored, new = changed.all("td", "line")
    assert stored.text() == "doubled [2, 4, 6]" and new.text() == "doubled [3, 6, 9]"
    removed, added = "".join(d.text() for d in stored.all("del")), "".join(i.text() for i in new.all("ins"))
    assert {"2", "4"} <= set(removed) <= set("246, ") and {"3", "9"} <= set(added) <= set("369, ")
    assert [row.all("td", "line")[0].text() for row in table.all("tr", "equal")] == [
        "node 'processor' of workflow 'notebook': output", "   key     value"]


def test_html_outputs_are_rendered_on_both_sides_in_sandboxed_frames(tmp_path):
    stored_html = "<table><tr><td>doubled</td><td>[2, 4, 6]</td></tr></table>"
    new_html = "<table><tr><td>doubled</td><td>[3, 6, 9]</td></tr></table>"
    processor = cell(9, "node processor", "changed", stored_outputs=(shown("a", stored_html),),
                     new_outputs=(shown("a", new_html),),
                     differences=(OutputDifference("text/html", (stored_html,), (new_html,)),))
    page = report(tmp_path, [notebook(processor)])

    marked = page.cell("cell 9: node processor")
    sides = marked.one("div", "difference").one(cls="sides").all(cls="side")
    assert [side.one("h5").text() for side in sides] == ["stored", "new"]
    for side, markup in zip(sides, [stored_html, new_html], strict=True):
        frame = side.one("iframe")
        assert frame.attrs["sandbox"] == "" and "src" not in frame.attrs  # no allow-scripts, nothing loaded
        document = Page.parse(frame.attrs["srcdoc"] or "")
        assert markup in (frame.attrs["srcdoc"] or "")
        assert [m.attrs.get("http-equiv") for m in document.all("meta")] == [None, "Content-Security-Policy"]
    assert marked.one("details", "markup").one("table", "diff")  # and the markup itself, line by line


def test_images_show_stored_new_and_their_difference(tmp_path):
    chart = cell(8, "%kailash show", "changed", stored_outputs=(shown("<Figure>", png=PNG),),
                 new_outputs=(shown("<Figure>", png=PNG_2),),
                 image_differences=(ImageDifference(1, PNG, PNG_2, "changed (RMS 9.10 > tolerance 2)", 9.1, PNG),))
    page = report(tmp_path, [notebook(chart)])

    difference = page.cell("cell 8: %kailash show").one("div", "difference")
    assert difference.one("h5").text() == "image 1 changed (RMS 9.10 > tolerance 2)"
    figures = difference.all("figure")
    assert [f.one("figcaption").text() for f in figures] == ["stored", "new", "difference"]
    assert [f.one("img").attrs["src"] for f in figures] == [
        f"data:image/png;base64,{PNG}", f"data:image/png;base64,{PNG_2}", f"data:image/png;base64,{PNG}"]


def test_an_image_that_appeared_says_there_was_no_stored_one(tmp_path):
    chart = cell(8, "%kailash show", "changed", new_outputs=(shown("<Figure>", png=PNG),),
                 image_differences=(ImageDifference(1, None, PNG, "appeared"),))
    page = report(tmp_path, [notebook(chart)])

    figures = page.cell("cell 8: %kailash show").one("div", "difference").all("figure")
    assert [squeeze(f.text()) for f in figures] == ["stored no stored image", "new", "difference no difference image"]


def test_a_cell_that_raised_shows_its_traceback_without_colour_codes(tmp_path):
    page = report(tmp_path, [notebook(raised_key_error())])

    marked = page.cell("cell 12: run = %kailash run")
    assert "raised KeyError: 'x'" in marked.one("header").text()
    traceback = marked.all("pre", "traceback")[0].text()
    assert traceback == "----> 1 x\nFile <node consumer>:2\nKeyError: 'x'"


def test_the_outputs_of_a_failing_cell_are_there_too_as_a_notebook_shows_them(tmp_path):
    raised = cell(12, "run", "raised", stored_outputs=(stream("running\n"), stream("done\n"), shown("3")),
                  new_outputs=(stream("running\n"), error("KeyError", "'x'")))
    page = report(tmp_path, [notebook(raised)])

    outputs = page.cell("cell 12: run").one("details", "outputs")
    assert "open" not in outputs.attrs  # the traceback comes first; the outputs are a click away
    stored, new = outputs.all(cls="side")
    assert [(p.one(cls="piece-label").text(), p.one("pre").text()) for p in stored.all(cls="piece")] == [
        ("stdout", "running\ndone\n"), ("text/plain", "3")]  # streams merged, as they are compared
    assert [p.one(cls="piece-label").text() for p in new.all(cls="piece")] == ["stdout", "KeyError: 'x'"]


def test_cells_that_timed_out_killed_the_kernel_or_did_not_run_say_so(tmp_path):
    hung = cell(5, "await asyncio.sleep(1e9)", "timed out", reason="no result after the cell timeout of 300 s",
                stored_outputs=(stream("waiting\n"),), new_outputs=(stream("waiting\n"),))
    after = cell(7, "print('after')", "not run", reason="not run: cell 5 timed out")
    died = cell(3, "os._exit(1)", "kernel died", path="notebooks/b.ipynb", reason="the kernel died while the cell ran")
    page = report(tmp_path, [notebook(hung, after), notebook(died, path="notebooks/b.ipynb")])

    timed_out = page.cell("cell 5: await asyncio.sleep(1e9)")
    assert timed_out.one(cls="notice").text() == (
        "No result after the cell timeout of 300 s. The cells after it were not run.")
    assert page.cell("cell 3: os._exit(1)").one(cls="notice").text() == (
        "The kernel died while the cell ran. The cells after it were not run.")
    outputs = timed_out.one("details", "outputs")
    assert "open" in outputs.attrs and "new, until it stopped" in outputs.text()
    not_run = page.cell("cell 7: print('after')")
    assert "failing" not in not_run.classes
    assert squeeze(not_run.one("summary").text()) == "not run cell 7: print('after') cell 5 timed out"
    summary = [squeeze(li.text()) for li in page.one("ol", "failures").all("li")]
    assert summary == [
        f"timed out {PATH}::cell 5: await asyncio.sleep(1e9) timed out: no result after the cell timeout of 300 s",
        "kernel died notebooks/b.ipynb::cell 3: os._exit(1) kernel died: the kernel died while the cell ran",
    ]


def test_a_stored_cell_that_was_never_run_but_has_outputs_says_so(tmp_path):
    odd = cell(4, "x", "changed", reason="the stored cell was never run but has outputs", compared=False,
               stored_outputs=(stream("left over\n"),), new_outputs=(stream("fresh\n"),))
    page = report(tmp_path, [notebook(odd)])

    marked = page.cell("cell 4: x")
    assert marked.one(cls="notice").text() == "The stored cell was never run but has outputs."
    outputs = marked.one("details", "outputs")
    assert "open" in outputs.attrs
    assert [pre.text() for pre in outputs.all("pre")] == ["left over\n", "fresh\n"]


def test_each_failing_cell_links_to_the_next_one_and_back_to_the_summary(tmp_path):
    page = report(tmp_path, [notebook(changed_processor(), raised_key_error())])

    first, second = page.all("section", "failing")
    assert [a.attrs["href"] for a in first.one("nav").all("a")] == ["#summary", f"#{second.attrs['id']}"]
    assert [a.attrs["href"] for a in second.one("nav").all("a")] == ["#summary"]


# -- safety ------------------------------------------------------------------------------------------------------

SCRIPT = "<script>alert('from the notebook')</script>"


def test_markup_from_a_notebook_is_shown_as_text(tmp_path):
    html = f"<b>new</b>{SCRIPT}"
    hostile = cell(9, SCRIPT, "changed", source=f"print({SCRIPT!r})", stored_outputs=(stream(f"{SCRIPT}\n"),),
                   new_outputs=(stream("<b>new</b>\n"), shown("x", html)),
                   differences=(OutputDifference("stdout", (f"{SCRIPT}\n",), ("<b>new</b>\n",)),
                                OutputDifference("text/html", (), (html,))))
    page = report(tmp_path, [notebook(hostile, headings={1: SCRIPT})], command=f"kailash-nb check '{SCRIPT}'")

    assert "<script" not in page.source.lower() and "<b>new" not in page.source
    assert "&lt;script&gt;alert(" in page.source
    marked = page.cell(f"cell 9: {SCRIPT}")
    stdout_diff = marked.all("table", "diff")[0]
    assert stdout_diff.one("tr", "changed").all("td", "line")[0].text() == SCRIPT
    assert marked.one("details", "source").one("pre").text() == f"print({SCRIPT!r})"
    assert page.one("h3", "heading").text() == SCRIPT
    assert not page.all("script")


def test_the_page_loads_nothing_from_the_network(tmp_path):
    remote = '<img src="https://example.com/pixel.png"><link rel="stylesheet" href="http://example.com/x.css">'
    drift = cell(7, "HTML(...)", "changed", stored_outputs=(shown("a", remote),), new_outputs=(shown("b", "<p>b</p>"),),
                 differences=(OutputDifference("text/html", (remote,), ("<p>b</p>",)),),
                 image_differences=(ImageDifference(1, PNG, PNG_2, "changed", 3.0, PNG),))
    page = report(tmp_path, [notebook(drift, changed_processor())])

    loading = [(e.tag, name, value) for e in page.iter() for name, value in e.attrs.items()
               if name in {"src", "href", "srcset", "action", "formaction", "poster", "data", "background"}]
    assert loading, "the page has images and links"
    for tag, name, value in loading:
        assert (value or "").startswith(("#", "data:image/png;base64,")), f"<{tag} {name}={value!r}>"
    assert not page.all("script") and not page.all("link") and not page.all("object") and not page.all("embed")
    css = "".join(style.text() for style in page.all("style"))
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    frames = page.all("iframe")
    assert frames and all(frame.attrs.get("sandbox") == "" and "src" not in frame.attrs for frame in frames)


def test_a_content_security_policy_forbids_script_and_every_load_but_inline_images_and_styles(tmp_path):
    page = report(tmp_path, [passing()])

    head = page.one("head")
    meta = [m for m in head.all("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert len(meta) == 1 and meta[0].attrs["content"] == CONTENT_SECURITY_POLICY
    assert head.all("meta").index(meta[0]) <= 1  # before anything it governs
    policy = dict(rule.strip().split(" ", 1) for rule in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["default-src"] == "'none'" and "script-src" not in policy
    assert policy["img-src"] == "data:" and policy["style-src"] == "'unsafe-inline'"
    assert not re.search(r"https?:|\*|'self'", CONTENT_SECURITY_POLICY)


# -- the file ----------------------------------------------------------------------------------------------------

def test_a_new_report_replaces_the_old_page_and_leaves_everything_else(tmp_path):
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "index.html").write_text("the last run's report")
    (folder / "notes.md").write_text("not the report's")

    page = write_report([passing()], folder, seconds=1.0, command="kailash-nb check")

    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert sorted(p.name for p in folder.iterdir()) == ["index.html", "notes.md"]
    assert (folder / "notes.md").read_text() == "not the report's"


def test_the_report_folder_is_created(tmp_path):
    page = write_report([], tmp_path / "out" / "check-report", seconds=0.0, command="kailash-nb check")
    assert page.is_file() and "No notebooks were checked" in page.read_text(encoding="utf-8")


def test_the_templates_ship_with_the_package():
    """A wheel holds only the package data pyproject.toml names: every template must be covered by it."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"].get("package-data", {}).get("kailash_nb.runner", [])
    folder = REPO / "kailash_nb" / "runner"
    templates = [p.relative_to(folder).as_posix() for p in (folder / "templates").iterdir() if p.is_file()]
    assert templates
    assert [t for t in templates if not any(fnmatch(t, pattern) for pattern in patterns)] == []


# -- the side-by-side diff ---------------------------------------------------------------------------------------

def test_a_diff_folds_long_unchanged_stretches_around_each_change():
    stored = "\n".join(f"line {n}" for n in range(1, 41))
    new = stored.replace("line 20", "line twenty")

    rows = side_by_side(stored, new, context=2).rows

    assert [(r.kind, r.stored_number, r.new_number, r.folded) for r in rows] == [
        ("folded", None, None, 17),
        ("equal", 18, 18, 0), ("equal", 19, 19, 0),
        ("changed", 20, 20, 0),
        ("equal", 21, 21, 0), ("equal", 22, 22, 0),
        ("folded", None, None, 18),
    ]


def test_a_diff_pairs_replaced_lines_and_shows_added_and_removed_ones_alone():
    rows = side_by_side("a\nb\nc", "a\nB\nx\ny\nc").rows
    assert [(r.kind, r.stored_number, r.new_number) for r in rows] == [
        ("equal", 1, 1), ("changed", 2, 2), ("added", None, 3), ("added", None, 4), ("equal", 3, 5)]
    assert side_by_side("a\nb", "a").rows[1].kind == "removed"


def test_a_diff_of_values_that_differ_only_in_line_endings_says_so():
    diff = side_by_side("2\n", "2")
    assert [row.kind for row in diff.rows] == ["equal"] and "line endings" in diff.note


@pytest.mark.parametrize("seconds, text", [(0.0123, "12 ms"), (6.94, "6.9 s"), (125.2, "2 min 5 s")])
def test_durations_read_at_a_useful_precision(seconds, text):
    from kailash_nb.runner.report import duration

    assert duration(seconds) == text
