"""What the result tables (Tables 3 and 4: :mod:`.uar_table`; Table 5:
:mod:`sernoise.attack.table5`; the sweep: :mod:`.sweep`) render and write alike: cell texts
with significance marks, LaTeX escaping and the table environment around a tabular, the notes
under a Markdown table, and the files of a table (CSV of the cells plus text renderings).
"""

from __future__ import annotations

import math
from pathlib import Path

EMPTY = "–"
MARKS = {"up": "↑", "down": "↓"}

_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_TEX_UNICODE = {"–": "--", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "≤": r"$\le$", "×": r"$\times$",
                "∞": r"$\infty$", "·": r"$\cdot$", "δ": r"$\delta$", "†": r"\dag{}",
                "⇑": r"$\Uparrow$", "⇓": r"$\Downarrow$"}


def value_text(mean: float, significant: bool, direction_: str) -> str:
    """A cell's text: the mean to two decimals, ↑/↓ when significant; EMPTY without a mean."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return EMPTY
    return f"{mean:.2f}" + (MARKS.get(direction_, "") if significant else "")


def tex_escape(text: str) -> str:
    out = "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))
    return "".join(_TEX_UNICODE.get(ch, ch) for ch in out)


def latex_open(title: str, caption_text: str, column_spec: str) -> list[str]:
    """The lines that open a booktabs table: comment, table environment, caption, label
    (``tab:`` + the title in lower case without spaces), tabular and top rule."""
    return [
        rf"% {title} (sernoise). Needs \usepackage{{booktabs}}.",
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\caption{" + tex_escape(caption_text) + "}",
        r"\label{tab:" + title.lower().replace(" ", "") + "}",
        r"\begin{tabular}{" + column_spec + "}",
        r"\toprule",
    ]


def latex_close(notes) -> list[str]:
    """The lines that close what :func:`latex_open` opened, with the notes in small print under the tabular."""
    lines = [r"\bottomrule", r"\end{tabular}"]
    if notes:
        lines.append(r"\par\smallskip")
        lines.append(r"{\footnotesize " + r" \\ ".join(tex_escape(note) for note in notes) + "}")
    lines.append(r"\end{table}")
    return lines


def markdown_notes(notes) -> list[str]:
    """The lines of the notes under a Markdown table (none without notes)."""
    return ["", "Notes:", ""] + [f"- {note}" for note in notes] if notes else []


def write_table_files(cells, csv, table, renderings) -> None:
    """The files of a table: the ``cells`` frame as CSV to ``csv``, and ``render(table)`` (UTF-8) to
    ``path`` for each (path, render) of ``renderings``; a path that is None or empty is not written."""
    if csv:
        cells.to_csv(csv, index=False, lineterminator="\n")
    for path, render in renderings:
        if path:
            Path(path).write_text(render(table), encoding="utf-8")
