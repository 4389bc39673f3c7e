"""A document with one passage highlighted on its exact offsets and scrolled into view.

The text is shown literally (see :func:`assistant.tui.render.display_text`), one
widget per line of the file, so the highlighted passage can be found on screen
and scrolled to without guessing how the whole document wraps.
"""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.content import Content
from textual.style import Style as VisualStyle
from textual.widgets import Static

from assistant.tui.render import Display, display_text

CITED = "source-view--cited"
CLAIM = "source-view--claim"
MAX_CHARS = 200_000  # longer documents show this much around the passage
CONTEXT = 60_000


class Paragraph(Static):
    """One line of the document (as split on newlines); empty ones keep their height."""


class SourceView(VerticalScroll, can_focus=True):
    COMPONENT_CLASSES = {CITED, CLAIM}

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._text: str | None = None
        self._display = Display("", [0])
        self._lines: list[tuple[int, int]] = []  # display [start, end) of each line shown
        self._cited = (0, 0)
        self._claim = (0, 0)

    async def show(self, text: str, start: int, end: int, focus: str = "") -> None:
        """Show ``text`` with file offsets ``[start, end)`` highlighted.

        ``focus``, the words of the answer quoted from the passage, is stressed too.
        """
        if text != self._text:
            self._text = text
            self._display = display_text(text)
            self._lines = []
        self._cited = self._display.span(start, end)
        at = text.find(focus, start, end) if focus else -1
        self._claim = self._display.span(at, at + len(focus)) if at >= 0 else (0, 0)
        shown = bool(self._lines) and self._lines[0][0] <= self._cited[0] \
            and self._cited[1] <= self._lines[-1][1]
        if not shown:
            await self._layout()
        for widget, bounds in zip(self.query(Paragraph), self._lines, strict=True):
            widget.update(self._line_content(bounds))
        self.call_after_refresh(self.scroll_to_cited)

    async def _layout(self) -> None:
        """One widget per line; a huge file shows whole lines around the passage."""
        shown = self._display.text
        lo, hi = 0, len(shown)
        if len(shown) > MAX_CHARS:
            start, end = self._cited
            lo = shown.rfind("\n", 0, max(0, start - CONTEXT)) + 1
            hi = shown.find("\n", min(len(shown), end + CONTEXT))
            hi = len(shown) if hi < 0 else hi
        self._lines = []
        pos = lo
        for line in shown[lo:hi].split("\n"):
            self._lines.append((pos, pos + len(line)))
            pos += len(line) + 1
        widgets: list[Static] = [Paragraph(classes="-blank" if a == b else "")
                                 for a, b in self._lines]
        if lo > 0:
            widgets.insert(0, Static(f"… {lo:,} earlier characters not shown", classes="elided"))
        if hi < len(shown):
            widgets.append(Static(f"… {len(shown) - hi:,} more characters not shown",
                                  classes="elided"))
        await self.remove_children()
        await self.mount_all(widgets)

    def _line_content(self, bounds: tuple[int, int]) -> Content:
        a, b = bounds
        content = Content(self._display.text[a:b])
        for span, style in ((self._cited, self._style(CITED)), (self._claim, self._style(CLAIM))):
            s, e = max(a, span[0]), min(b, span[1])
            if s < e:
                content = content.stylize(style, s - a, e - a)
        return content

    def _style(self, component: str) -> VisualStyle:
        """The resolved style (a partial one would drop an opaque background)."""
        return self.get_visual_style(component)

    def highlighted(self) -> list[tuple[Paragraph, str]]:
        """Each line that shows highlighted text, with that text, as rendered."""
        cited = self._style(CITED)
        found = []
        for widget in self.query(Paragraph):
            content = widget.visual
            assert isinstance(content, Content)
            marked = [content.plain[s.start:s.end] for s in content.spans if s.style == cited]
            if marked:
                found.append((widget, "".join(marked)))
        return found

    def highlighted_text(self) -> str:
        """The highlighted characters as rendered, lines joined by newlines."""
        found = self.highlighted()
        if not found:
            return ""
        lines = list(self.query(Paragraph))
        first, last = lines.index(found[0][0]), lines.index(found[-1][0])
        text = {lines.index(w): t for w, t in found}
        return "\n".join(text.get(i, "") for i in range(first, last + 1))

    def scroll_to_cited(self) -> None:
        """Put the first highlighted line a few rows below the top of the view."""
        start = self._cited[0]
        for widget, (a, b) in zip(self.query(Paragraph), self._lines, strict=True):
            if a <= start <= b:
                width = max(1, widget.content_region.width)
                before = Content(self._display.text[a:start]).wrap(width) if start > a else []
                row = widget.virtual_region.y + max(0, len(before) - 1)
                self.scroll_to(y=max(0, row - 2), animate=False)
                return
