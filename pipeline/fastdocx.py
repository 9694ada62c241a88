"""The fast Word writer: one docxtpl template filled many times in a process, with plain docxtpl's bytes.

Plain docxtpl (``plain``, and render.fill) reloads the .docx, re-patches its XML and recompiles it with Jinja for
every report (~70 of the ~90 ms a report takes), and python-docx then re-serialises and re-deflates every part,
~800 KB of unchanged styles among them. A ``Prepared`` template is loaded once per process: its pristine XML is
captured, patched and compiled once, the parts rendering never changes are serialised once, and a part that comes
out as last time is not deflated again (``ooxml.zip_members``: zlib and the zip format, public API): ~7 ms a
report.

This module is the one place that reaches into a library's internals for that speed: the docxtpl methods its
``DocxTemplate`` subclass overrides and python-docx's package writer (``REACHED_INTO``). So the fast path runs only under
the exact versions it was written and tested against (``PINS``; pyproject.toml pins the same, and
tests/test_fastdocx.py fails loudly when another version is installed) and while ``problems()`` finds nothing;
and the first report a prepared template fills in a process is rendered by plain docxtpl as well and compared
byte for byte (plain docxtpl's bytes are the ones returned). Whenever one of these does not hold, ``fill``
renders with plain docxtpl: the same bytes, only slower — never different output.

Upgrading docxtpl or python-docx: install the new version, read what changed in the functions of
``REACHED_INTO``, run tests/test_fastdocx.py and tests/test_parallel.py, then update ``PINS`` and pyproject.toml.
"""

from __future__ import annotations

import datetime
import functools
import importlib
import inspect
import logging
import re
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from . import ooxml

#: The exact versions the fast path was written and tested against (distribution name → version).
PINS = {"docxtpl": "0.20.2", "python-docx": "1.2.0"}

#: What the fast path overrides or calls that is not docxtpl's or python-docx's documented API: (module, name,
#: signature) — the signature of a method the fast path overrides must stay the one it overrides.
REACHED_INTO = (
    ("docxtpl.template", "DocxTemplate.get_xml", "(self)"),
    ("docxtpl.template", "DocxTemplate.get_part_xml", "(self, part)"),
    ("docxtpl.template", "DocxTemplate.patch_xml", "(self, src_xml)"),
    ("docxtpl.template", "DocxTemplate.resolve_listing", "(self, xml)"),
    ("docxtpl.template", "DocxTemplate.render_xml_part", "(self, src_xml, part, context, jinja_env=None)"),
    ("docxtpl.template", "DocxTemplate.map_tree", "(self, tree)"),
    ("docxtpl.template", "DocxTemplate.fix_tables", "(self, xml)"),
    ("docxtpl.template", "DocxTemplate.init_docx", None),
    ("docxtpl.template", "DocxTemplate.render", None),
    ("docx.opc.pkgwriter", "PackageWriter._write_content_types_stream", "(phys_writer, parts)"),
    ("docx.opc.pkgwriter", "PackageWriter._write_pkg_rels", "(phys_writer, pkg_rels)"),
    ("docx.opc.oxml", "serialize_part_xml", None),
    ("docx.opc.part", "Part.before_marshal", "(self)"),
    ("docx.opc.part", "Part.blob", None),
    ("docx.opc.part", "Part.rels", None),
    ("docx.opc.rel", "Relationships.xml", None),
    ("docx.opc.package", "OpcPackage.parts", None),
    ("docx.opc.package", "OpcPackage.rels", None),
    ("docx.opc.packuri", "PackURI.membername", None),
    ("docx.opc.packuri", "PackURI.rels_uri", None),
    ("docx.opc.constants", "CONTENT_TYPE.OPC_CORE_PROPERTIES", None),
)

#: The core properties docxtpl renders with Jinja (DocxTemplate.render_properties): restored before each report.
RENDERED_PROPERTIES = ("author", "comments", "identifier", "language", "subject", "title")

_log = logging.getLogger(__name__)

#: docxtpl's resolve_listing: its paragraph pattern, and the characters it rewrites.
_PARAGRAPH = re.compile(r"<w:p(?: [^>]*)?>.*?</w:p>", re.DOTALL)
_LISTING = re.compile(r"[\t\a\n\f]")


@functools.cache
def problems() -> tuple[str, ...]:
    """Why the fast path cannot run with the libraries installed here (empty when it can). Checked once."""
    out = []
    for dist, pin in PINS.items():
        try:
            installed = metadata.version(dist)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != pin:
            out.append(f"{dist} {installed or 'not installed'} is installed, the fast path is written for {pin}")
    for module, name, signature in REACHED_INTO:
        try:
            obj = importlib.import_module(module)
            for part in name.split("."):
                obj = inspect.getattr_static(obj, part)
        except (ImportError, AttributeError):
            out.append(f"{module}.{name} is missing")
            continue
        if signature is not None:
            fn = obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj
            try:
                found = str(inspect.signature(fn))
            except (TypeError, ValueError):
                found = "?"
            if found != signature:
                out.append(f"{module}.{name} takes {found}, the fast path overrides or calls it as {signature}")
    return tuple(out)


def plain(template: str | Path, context: Mapping[str, object]) -> bytes:
    """The .docx bytes plain docxtpl gives (a fresh DocxTemplate, autoescape on), saved reproducibly."""
    from docxtpl import DocxTemplate

    tpl = DocxTemplate(str(template))
    tpl.render(dict(context), autoescape=True)
    return ooxml.document_bytes(tpl)


def fill(template: str | Path, context: Mapping[str, object]) -> bytes:
    """The .docx bytes of ``template`` filled with ``context`` (plain values: strings, lists, dicts): those of
    ``plain``, by the prepared template when it can be used."""
    fast = prepare(template)
    return plain(template, context) if fast is None else fast.fill(context)


#: This process's loaded templates (forked workers inherit them), or why a template could not be prepared.
_PREPARED: dict[tuple[str, int, int], Prepared | str] = {}


def prepare(template: str | Path) -> Prepared | None:
    """This process's prepared ``template`` (loaded and compiled on first use), or None when the fast path cannot
    be used: ``problems()``, the template could not be prepared, or its check (see ``Prepared``) failed. Call it
    before forking workers and they inherit the loaded template."""
    if problems():
        return None
    path = Path(template)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    fast = _PREPARED.get(key)
    if fast is None:
        try:
            fast = Prepared(path)
        except Exception as e:  # a template the fast path does not know how to take apart: plain docxtpl's
            fast = f"{type(e).__name__}: {e}"
            _log.info("%s cannot prepare %s (%s); plain docxtpl renders it", __name__, path, fast)
        _PREPARED[key] = fast
    return fast if isinstance(fast, Prepared) and not fast.broken else None


# ---- the prepared template


class _PartCollector:
    """Stands in for python-docx's physical package writer: keeps (member name, bytes) in order, unzipped."""

    def __init__(self):
        self.items: list[tuple[str, bytes]] = []

    def write(self, pack_uri, blob: bytes) -> None:
        self.items.append((pack_uri.membername, blob))

    def close(self) -> None:
        pass


def _no_block_in_a_table(patched_xml: str) -> bool:
    """No Jinja block ({% … %}) inside a table of the (patched) template: every report has its tables' rows and
    cells (text cannot add any: it is escaped)."""
    depth = 0
    for m in re.finditer(r"<w:tbl[ >]|</w:tbl>|\{%", patched_xml):
        tok = m.group()
        if tok == "{%":
            if depth:
                return False
        else:
            depth += -1 if tok == "</w:tbl>" else 1
    return True


def _tables_fit_their_grids(tree) -> bool:
    """True when docxtpl's ``fix_tables`` would change nothing: no table has a row with more cells than grid
    columns, nor more grid columns than its widest row spans (rows counted as docxtpl counts them)."""
    ns = "{" + tree.nsmap["w"] + "}"
    grid_tag, col_tag, tr_tag, tc_tag = ns + "tblGrid", ns + "gridCol", ns + "tr", ns + "tc"
    pr_tag, span_tag, val = ns + "tcPr", ns + "gridSpan", ns + "val"
    for t in tree.iter(ns + "tbl"):
        grid = t.find(grid_tag)
        if grid is None:
            return False
        columns = len(grid.findall(col_tag))
        widest = spanned = 0
        for r in t.iter(tr_tag):
            cells = r.findall(tc_tag)
            widest = max(widest, len(cells))
            total = 0
            for c in cells:
                pr = c.find(pr_tag)
                span = None if pr is None else pr.find(span_tag)
                total += 1 if span is None else int(span.get(val))
            spanned = max(spanned, total)
        if widest > columns or columns > spanned:
            return False
    return True


@functools.cache
def _template_class():
    """docxtpl's DocxTemplate with its per-render work done once where the result cannot change."""
    from docxtpl import DocxTemplate
    from jinja2.exceptions import TemplateError
    from lxml import etree

    class Template(DocxTemplate):
        def __init__(self, template_file):
            super().__init__(template_file)
            self.body_xml: str | None = None  # the template's body, captured once loaded
            self.patched: dict[str, str] = {}
            self.prepared: dict[str, str] = {}
            self.parts_xml: dict[str, str] = {}
            self.body_tree = None
            self.tables_static = False  # no {% %} inside any table of the template
            self.tables_fit: bool | None = None

        def get_xml(self):  # the template's body, not the last report's
            return super().get_xml() if self.body_xml is None else self.body_xml

        def get_part_xml(self, part):  # headers and footers as in the template
            key = str(part.partname)
            if key not in self.parts_xml:
                self.parts_xml[key] = super().get_part_xml(part)
            return self.parts_xml[key]

        def patch_xml(self, src_xml):
            if src_xml not in self.patched:
                self.patched[src_xml] = super().patch_xml(src_xml)
            return self.patched[src_xml]

        def resolve_listing(self, xml):
            # docxtpl's rewrites \t \a \n \f inside the texts of a paragraph and leaves every other paragraph
            # as it is: given only the paragraphs that hold one (a title's line break), it returns the same bytes
            # (~3 ms a report less than running its three nested regular expressions over the whole document).
            if not _LISTING.search(xml):
                return xml
            out, at = [], 0
            for m in _PARAGRAPH.finditer(xml):
                if _LISTING.search(xml, m.start(), m.end()):
                    out += (xml[at:m.start()], super().resolve_listing(m.group(0)))
                    at = m.end()
            out.append(xml[at:])
            return "".join(out)

        def render_xml_part(self, src_xml, part, context, jinja_env=None):
            # docxtpl's, with its two substitutions of "\n<w:p" memoised / done as plain replacements
            if jinja_env is None:
                return super().render_xml_part(src_xml, part, context, jinja_env)
            src = self.prepared.get(src_xml)
            if src is None:
                src = self.prepared[src_xml] = re.sub(r"<w:p([ >])", r"\n<w:p\1", src_xml)
            self.current_rendering_part = part
            try:
                dst_xml = jinja_env.from_string(src).render(context)
            except TemplateError:  # docxtpl's own path, which says where in the document
                return super().render_xml_part(src_xml, part, context, jinja_env)
            dst_xml = dst_xml.replace("\n<w:p ", "<w:p ").replace("\n<w:p>", "<w:p>")
            dst_xml = (dst_xml.replace("{_{", "{{").replace("}_}", "}}").replace("{_%", "{%")
                       .replace("%_}", "%}"))
            return self.resolve_listing(dst_xml)

        def map_tree(self, tree):  # kept aside: the document part is written from it (Prepared.render)
            self.body_tree = tree

        def fix_tables(self, xml):
            # docxtpl's parse; its table fixing only where it changes something. Tables without a Jinja block
            # inside come out with the template's rows and cells every time: checked once.
            tree = etree.fromstring(xml, parser=etree.XMLParser(recover=True))
            fit = self.tables_fit if self.tables_static else None
            if fit is None:
                fit = self.tables_fit = _tables_fit_their_grids(tree)
            return tree if fit else super().fix_tables(xml)

    return Template


@functools.cache
def _compiling_environment():
    """Jinja's Environment, compiling each source once (docxtpl compiles every part on every render)."""
    from jinja2 import Environment

    class CompilingEnvironment(Environment):
        def __init__(self, **options):
            super().__init__(**options)
            self.compiled: dict[str, object] = {}

        def from_string(self, source, globals=None, template_class=None):
            if globals is not None or template_class is not None:
                return super().from_string(source, globals, template_class)
            if source not in self.compiled:
                self.compiled[source] = super().from_string(source)
            return self.compiled[source]

    return CompilingEnvironment


class Prepared:
    """One docxtpl template rendered many times in a process without reloading or recompiling it.

    ``render`` gives the fast bytes; ``fill`` checks them once against plain docxtpl's (the first report it fills
    in a process is rendered both ways; the plain bytes are returned) and is what callers use. A difference, or
    an error plain docxtpl does not share, marks the template ``broken`` (the reason): ``prepare`` then gives
    None and everything is rendered with plain docxtpl.
    """

    def __init__(self, template: Path):
        from docx.opc.constants import CONTENT_TYPE as CT
        from docx.opc.oxml import serialize_part_xml

        self.path = Path(template)
        self.broken = ""
        self.verified = False
        self.tpl = tpl = _template_class()(str(template))
        tpl.init_docx()
        tpl.body_xml = tpl.get_xml()
        tpl.tables_static = _no_block_in_a_table(tpl.patch_xml(tpl.body_xml))
        core = tpl.docx.core_properties
        self.properties = {p: getattr(core, p) for p in RENDERED_PROPERTIES}
        self.env = _compiling_environment()(autoescape=True)
        self.deflated: dict[str, tuple[bytes, bytes, int]] = {}  # member → (bytes, deflate stream, CRC)
        # The document part is written as the template's document around the rendered body (moving the body
        # into the document cost more than rendering it); the parts rendering never changes are serialised once.
        root = tpl.docx._element
        doc = serialize_part_xml(root)
        start, end = doc.index(b"<w:body"), doc.rindex(b"</w:body>") + len(b"</w:body>")
        self.around_body = (doc[:start], doc[end:])
        # Moved into the document, the rendered body loses its namespace declarations (all the document's own):
        # written beside it, they are left out the same way. Only for a template without declarations inside the
        # body and a body without attributes; any other is moved into the document as docxtpl does.
        self.root_ns = dict(root.nsmap)
        self.body_alone = not root.body.attrib and all(
            el.nsmap == el.getparent().nsmap for el in root.body.iter() if el is not root.body
        ) and root.body.nsmap == root.nsmap
        self.main = tpl.docx.part
        self.fixed_parts = {id(p): p for p in self.main.package.parts
                            if p is not self.main and p.content_type != CT.OPC_CORE_PROPERTIES
                            and not str(p.partname).startswith(("/word/header", "/word/footer"))}
        self.blobs: dict[int, bytes] = {}

    def fill(self, context: Mapping[str, object]) -> bytes:
        """The .docx bytes of the template filled with ``context``: plain docxtpl's (checked on the first)."""
        if self.broken:
            return plain(self.path, context)
        try:
            data, error = self.render(context), None
        except Exception as e:  # plain docxtpl below says whether the context itself is at fault
            data, error = None, e
        if self.verified and data is not None:
            return data
        reference = plain(self.path, context)  # raises when docxtpl itself cannot render this context
        if data != reference:
            self.broken = (f"the fast path failed ({type(error).__name__}: {error})" if error is not None
                           else "the fast path's bytes differ from plain docxtpl's")
            _log.info("%s: %s for %s; plain docxtpl renders the rest", __name__, self.broken, self.path)
        self.verified = True
        return reference

    def render(self, context: Mapping[str, object]) -> bytes:
        """The .docx bytes of the template filled with ``context`` by the fast path (unchecked: see ``fill``)."""
        from docx.opc.oxml import serialize_part_xml
        from docx.opc.pkgwriter import PackageWriter
        from lxml import etree

        tpl = self.tpl
        tpl.is_rendered = False  # keep the loaded document: render() replaces its body, footers and properties
        core = tpl.docx.core_properties
        for p, v in self.properties.items():
            setattr(core, p, v)
        tpl.render(dict(context), jinja_env=self.env, autoescape=True)
        fixed = datetime.datetime(*ooxml.FIXED_ZIP_TIME)  # as ooxml.document_bytes sets them
        core.created = core.modified = core.last_printed = fixed
        pkg = tpl.docx.part.package
        parts = pkg.parts
        for part in parts:  # as OpcPackage.save does
            part.before_marshal()
        body = tpl.body_tree
        if self.body_alone and dict(body.nsmap) == self.root_ns and not body.attrib:
            xml = etree.tostring(body, encoding="UTF-8", xml_declaration=False)
            document = self.around_body[0] + b"<w:body>" + xml[xml.index(b">") + 1:] + self.around_body[1]
        else:
            from docxtpl import DocxTemplate

            DocxTemplate.map_tree(tpl, body)
            document = serialize_part_xml(tpl.docx._element)
        out = _PartCollector()  # PackageWriter.write, into a list instead of a zip
        PackageWriter._write_content_types_stream(out, parts)
        PackageWriter._write_pkg_rels(out, pkg.rels)
        for part in parts:  # PackageWriter._write_parts, with the blobs above
            if part is self.main:
                blob = document
            elif id(part) in self.fixed_parts:
                blob = self.blobs.get(id(part))
                if blob is None:
                    blob = self.blobs[id(part)] = part.blob
            else:
                blob = part.blob
            out.write(part.partname, blob)
            if len(part.rels):
                out.write(part.partname.rels_uri, part.rels.xml)
        return ooxml.zip_members(out.items, self.deflated)
