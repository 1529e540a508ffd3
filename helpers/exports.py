"""What the runs hand to people: each notebook as PDF and HTML (nbconvert), and the
README's tables."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from helpers import artifacts

README = artifacts.PROJECT_ROOT / "README.md"


# The box-drawing characters of ``model.summary()``, which the PDF's font lacks.
BOX_TO_ASCII = str.maketrans("┏┳┓┡╇┩└┴┘├┼┤┃│━─", "++++++++++++||=-")
HIDDEN = dict(  # cell tags the exports honour (nbconvert's TagRemovePreprocessor)
    remove_input_tags={"remove_input"},  # prose rendered from numbers: the text only
    remove_cell_tags={"remove_cell"},  # a long table: summarised in the next cell
)


def export(
    notebook: Path, name: str, reports_dir: Path, hide_input: bool, passes: int = 3
) -> Path:
    """Export an executed notebook to ``html/<name>.html`` and, with XeLaTeX, to
    ``<name>.pdf`` (three ``passes`` settle its outline); return the last written."""
    import nbformat
    from nbconvert import HTMLExporter, PDFExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(notebook, as_version=4)
    for output in (output for cell in nb.cells for output in cell.get("outputs", [])):
        for texts, key in ((output, "text"), (output.get("data", {}), "text/plain")):
            if key in texts:
                texts[key] = texts[key].translate(BOX_TO_ASCII)
    title, _, rest = nb.cells[0].source.partition("\n")
    nb.metadata["title"] = title.lstrip("# ")
    hide = {f"exclude_{part}": hide_input for part in ("input", "input_prompt")}
    hide["exclude_output_prompt"] = hide_input
    path = reports_dir / "html" / f"{name}.html"
    exports = [(HTMLExporter(embed_images=True, **hide), path)]
    if shutil.which("xelatex"):
        pdf = PDFExporter(latex_count=passes, **hide)
        exports.append((pdf, reports_dir / f"{name}.pdf"))
    for exporter, path in exports:
        if isinstance(exporter, PDFExporter):  # LaTeX prints the title once, above,
            nb.cells[0].source = rest  # and numbers the "##" sections 1, 2, ...
            for cell in nb.cells:
                if cell.cell_type == "markdown":
                    cell.source = re.sub(r"^#(#+) ", r"\1 ", cell.source, flags=re.M)
        exporter.register_preprocessor(TagRemovePreprocessor(**HIDDEN), enabled=True)
        body, _ = exporter.from_notebook_node(nb)
        with artifacts.atomic_path(path) as tmp:
            tmp.write_bytes(body if isinstance(body, bytes) else body.encode())
    return path


def update_readme(output_dir: Path, readme: Path = README) -> None:
    """Put the tables 05 and 07 wrote (``tables/*.md``) between their markers in the
    README; one not written is left as it is."""
    text = readme.read_text()
    for name in ("results", "replication"):
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        table = output_dir / "tables" / f"{name}.md"
        if not table.is_file():
            print(f"README: {name} table left as it is (no {table})")
            continue
        before, rest = text.split(start, 1)
        text = f"{before}{start}\n{table.read_text().strip()}\n\nFrom"
        text += f" `artifacts/metrics/*.json`; regenerate with `make readme`.\n{end}"
        text += rest.split(end, 1)[1]
    with artifacts.atomic_path(readme) as tmp:
        tmp.write_text(text)
