"""What a notebook may carry onto the course website, and the checks that hold it to that.

The site is built from notebooks anyone can send a pull request to, and it is served from the project's own origin:
a script that reaches a page can act as the site. ``docs/conf.py`` runs these checks when it copies the notebooks
(``builder-inited``) and loads this file as an extension (``app.setup_extension("sanitise")``). The rule
(``docs/reliability.md``):

* **What the author writes fails the build.** Markdown cells, raw cells and their attachments are checked in the
  committed notebook, teacher cells too: HTML outside ``TAGS`` / ``ATTRIBUTES`` (``<script>``, ``<iframe>``, an
  ``onerror=`` handler …), a URL whose scheme is not ``http``, ``https`` or ``mailto`` (``javascript:``), HTML in a
  heading, a MyST directive or role outside ``DIRECTIVES`` / ``ROLES`` (``{raw}``, ``{eval-rst}``, ``{download}`` …),
  a raw cell that would render as anything but text, or an attachment that is not a PNG, JPEG, GIF or a script-free
  SVG each end the build with one line: ``notebooks/NAME.ipynb, cell N (TYPE): WHAT`` (cells counted from 1 as the
  file holds them).
* **What code produced is sanitised.** A notebook page's copy drops JavaScript outputs and SVG outputs that carry
  script (the output's PNG or text shows instead; the build log names the cell's id), and keeps of the notebook's
  metadata only ``kernelspec`` and ``language_info`` (``mystnb`` / ``myst`` keys would reconfigure the build, even
  run the notebook) and of each cell's only ``tags``. HTML outputs are cleaned by the backstop below.
* **Backstop.** The body of every notebook page goes through nh3 (the Ammonia sanitiser) with the same allowlist
  before it is written, so whatever the checks above miss cannot run; raw HTML never reaches a heading (headings
  are shown on every page's navigation) and no ``<meta>`` comes from a notebook; an SVG image or a download
  of an HTML, XML or SVG file that a notebook page links fails the build; MathJax runs with its ``ui/safe``
  extension (``\\href{javascript:…}``).

What the committed notebooks use is all kept: ``<details>``/``<summary>`` solutions, the progress
``<div>``/``<progress>`` of 08, Markdown tables, the painter's PNG attachment. Their pages differ from what Sphinx
writes only as nh3 serialises HTML (``<img …>`` for ``<img … />``, ``"`` for ``&quot;`` in text) and by the HTML
comments (``<!-- time -->`` markers), which it drops.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import sys
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import nh3

# The HTML a notebook page may hold: what Sphinx, docutils and myst-nb write for a notebook, and what notebooks use.
TAGS = frozenset(
    "a abbr aside b blockquote br caption cite code col colgroup dd del details dfn div dl dt em figcaption figure "
    "h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark nav ol p pre progress q s samp section small span strong sub summary "
    "sup table tbody td tfoot th thead tr u ul var".split()
)
ATTRIBUTES = {
    "*": {"class", "id", "title", "style", "lang", "dir", "role", "aria-label", "aria-hidden"},
    "a": {"href", "download"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start", "reversed", "type"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "col": {"span", "width"},
    "table": {"border"},
    "progress": {"value", "max"},
    "details": {"open"},
    "blockquote": {"cite"},
    "q": {"cite"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})  # and relative URLs
URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
# CSS a style= attribute keeps (layout of a figure or a progress bar; nothing that overlays the page).
STYLE_PROPERTIES = frozenset(
    "width height max-width max-height min-width min-height vertical-align text-align color background-color "
    "font-weight font-style font-size font-family text-decoration white-space border border-collapse border-color "
    "border-style border-width padding padding-left padding-right padding-top padding-bottom margin margin-left "
    "margin-right margin-top margin-bottom".split()
)
# MyST directives a markdown cell may use: those whose body is Markdown (checked like the cell), and those whose
# body is code or TeX. Everything else ({raw}, {eval-rst}, {include}, {literalinclude}, {csv-table}, …) fails.
MARKDOWN_DIRECTIVES = frozenset(
    "admonition attention caution danger error hint important note seealso tip warning topic sidebar epigraph "
    "pull-quote highlights figure table list-table".split()
)
TEXT_DIRECTIVES = frozenset({"code-block", "code", "sourcecode", "math", "image"})
DIRECTIVES = MARKDOWN_DIRECTIVES | TEXT_DIRECTIVES
ROLES = frozenset(
    "math sub sup subscript superscript abbr kbd code samp literal emphasis strong guilabel menuselection term dfn "
    "ref doc numref eq command file program".split()
)
# Attachments the site shows: MIME type -> (file suffixes, what the file starts with).
IMAGE_TYPES = {
    "image/png": ((".png",), (b"\x89PNG\r\n\x1a\n",)),
    "image/jpeg": ((".jpg", ".jpeg"), (b"\xff\xd8\xff",)),
    "image/gif": ((".gif",), (b"GIF87a", b"GIF89a")),
    "image/svg+xml": ((".svg",), ()),
}
RAW_FORMATS = frozenset({"", "text/plain", "text/markdown", "text/html", "text/latex"})  # what a raw cell may be
SVG_NS = "http://www.w3.org/2000/svg"
# Metadata vocabularies that Matplotlib and Inkscape write into an SVG: inert in a browser.
INERT_NS = frozenset(
    {
        "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
        "http://creativecommons.org/ns#",
        "http://purl.org/dc/elements/1.1/",
        "http://purl.org/dc/terms/",
        "http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd",
        "http://www.inkscape.org/namespaces/inkscape",
    }
)
SVG_ELEMENTS = frozenset(
    "svg g defs symbol use path rect circle ellipse line polyline polygon text tspan textPath title desc metadata "
    "clipPath mask pattern marker linearGradient radialGradient stop style image switch filter feBlend "
    "feColorMatrix feComponentTransfer feComposite feConvolveMatrix feDiffuseLighting feDisplacementMap "
    "feDistantLight feDropShadow feFlood feFuncA feFuncB feFuncG feFuncR feGaussianBlur feImage feMerge "
    "feMergeNode feMorphology feOffset fePointLight feSpecularLighting feSpotLight feTile feTurbulence".split()
)
_SVG_HREF = re.compile(r"#|data:image/(png|jpeg|gif|webp)[;,]", re.I)  # what an SVG may point at: itself, a bitmap
_CLEAN = {
    "tags": set(TAGS),
    "attributes": {tag: set(names) for tag, names in ATTRIBUTES.items()},
    "url_schemes": set(URL_SCHEMES),
    "link_rel": None,
    "strip_comments": True,
    "filter_style_properties": set(STYLE_PROPERTIES),
}
# The same parse without the allowlist: every element and attribute worth naming survives, so the check below sees
# the HTML as the backstop (and a browser) parses it, and names what the backstop would remove.
_FLAGGED_TAGS = set(
    "script style iframe frame frameset object embed applet base link meta form input button select textarea option "
    "svg math template noscript noembed video audio source track canvas marquee dialog portal xmp plaintext title "
    "foreignobject animate set image use".split()
)
_LENIENT = {
    "tags": set(TAGS) | _FLAGGED_TAGS,
    "clean_content_tags": set(),
    "attributes": {tag: set(names) for tag, names in ATTRIBUTES.items()},
    "generic_attribute_prefixes": {"on", "data-"},
    "url_schemes": set(URL_SCHEMES) | {"javascript", "vbscript", "data", "file", "blob", "filesystem"},
    "link_rel": None,
    "strip_comments": True,
}
_LENIENT["attributes"]["*"] |= {
    "src", "href", "srcdoc", "action", "formaction", "background", "poster", "xlink:href", "http-equiv", "content",
}  # fmt: skip


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


class Refused(Exception):
    """What a notebook carries that the site will not show: its one line names the notebook, the cell and what."""


def fail(message: str) -> None:
    """End the build with ``message`` as its one line of error (exit status 2), as ``docs/conf.py``'s ``_fail``."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(2)


def clean_html(html: str) -> str:
    """``html`` with only the allowlisted elements, attributes, URL schemes and CSS properties (nh3)."""
    return nh3.clean(html, **_CLEAN)


def url_scheme(url: str) -> str | None:
    """The scheme of ``url`` as a browser reads it (tabs and newlines ignored), lower case; None if relative."""
    url = re.sub(r"[\t\n\r]", "", url).strip("".join(map(chr, range(0x21))))  # C0 controls and spaces
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)
    return m.group(1).lower() if m else None


class _Problems(HTMLParser):
    """The first element, attribute or URL of (canonical) HTML that the allowlist does not keep."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problem: str | None = None

    def handle_starttag(self, tag, attrs):
        if self.problem:
            return
        if tag not in TAGS:
            self.problem = f"{_a(tag)} <{tag}> element"
            return
        allowed = ATTRIBUTES["*"] | ATTRIBUTES.get(tag, set())
        for name, value in attrs:
            if name.startswith("on"):
                self.problem = f"an event handler {name}= on <{tag}>"
            elif name not in allowed:
                self.problem = f"an attribute {name}= on <{tag}>"
            elif name in URL_ATTRIBUTES and url_scheme(value or "") not in (None, *URL_SCHEMES):
                self.problem = f"a {url_scheme(value)}: URL in {name}= of <{tag}>"
            if self.problem:
                return


def html_problem(html: str) -> str | None:
    """What in ``html`` could run script or is not kept on the site (see ``TAGS``), or None."""
    finder = _Problems()
    finder.feed(nh3.clean(html, **_LENIENT))
    finder.close()
    return finder.problem


def svg_problem(svg: str | bytes) -> str | None:
    """What in an SVG document could run script or load something (it is served from the site), or None.

    A browser parses a served SVG as XML, as this does: only SVG elements of ``SVG_ELEMENTS`` (and the metadata
    vocabularies of ``INERT_NS``), no event handler, no link but to the SVG itself or an embedded bitmap, no
    processing instruction (an XSLT stylesheet), no entity declaration.
    """
    text = svg.decode("utf-8", "replace") if isinstance(svg, bytes) else svg
    if "<!ENTITY" in text:
        return "an SVG with an entity declaration"
    parser = ElementTree.XMLPullParser(events=("start", "pi"))
    try:
        parser.feed(text)
        parser.close()
        events = list(parser.read_events())
    except ElementTree.ParseError as err:
        return f"an SVG that is not well-formed XML ({err})"
    starts = [element for event, element in events if event == "start"]
    if not starts or starts[0].tag != f"{{{SVG_NS}}}svg":
        return "an SVG whose root is not an <svg> element of the SVG namespace"
    for event, element in events:
        if event == "pi":
            return "an SVG with a processing instruction (<?…?>)"
        ns, _, local = element.tag.rpartition("}")
        ns = ns.lstrip("{")
        if ns in INERT_NS:
            continue
        if ns != SVG_NS or local not in SVG_ELEMENTS:
            where = "" if ns == SVG_NS else f" (namespace {ns or 'none'})"
            return f"an SVG with {_a(local)} <{local}> element{where}"
        for name, value in element.attrib.items():
            attr = name.rpartition("}")[2]
            if attr.lower().startswith("on"):
                return f"an SVG with an event handler {attr}= on <{local}>"
            if attr.lower() == "href" and not _SVG_HREF.match(value.strip()):
                return f"an SVG whose <{local}> links {value.strip()[:40]!r}"
    return None


def _markdown_parser(extensions):
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    return create_md_parser(MdParserConfig(enable_extensions=set(extensions)), RendererHTML)


def markdown_problem(source: str, extensions=("colon_fence",)) -> str | None:
    """What in a markdown cell (MyST, as the site parses it) could run script on the site, or None."""
    return _markdown_problem(source, _markdown_parser(extensions))


def _markdown_problem(source: str, md) -> str | None:
    html, in_heading = [], False
    tokens = list(md.parse(source))
    while tokens:
        tok = tokens.pop(0)
        if tok.type == "heading_open":
            in_heading = True
        elif tok.type == "heading_close":
            in_heading = False
        elif tok.children:
            tokens[:0] = tok.children
        if tok.type in ("html_block", "html_inline"):
            if in_heading:
                return f"HTML in a heading ({tok.content.strip()[:40]!r})"
            html.append(tok.content)
        elif tok.type in ("link_open", "image"):  # attachment: is the cell's own (docs/conf.py links its file)
            scheme = url_scheme(str(tok.attrs.get("href") or tok.attrs.get("src") or ""))
            if scheme not in (None, "attachment", *URL_SCHEMES):
                return f"a link to a {scheme}: URL"
        elif tok.type == "myst_role" and tok.meta.get("name") not in ROLES:
            return f"the {{{tok.meta.get('name')}}} role (not in sanitise.ROLES)"
        elif tok.type in ("fence", "colon_fence") and tok.info.strip().startswith("{"):
            name = tok.info.strip()[1:].partition("}")[0].strip()
            if name not in DIRECTIVES:
                return f"the {{{name}}} directive (not in sanitise.DIRECTIVES)"
            if name in MARKDOWN_DIRECTIVES:
                inner = _markdown_problem(tok.content, md)
                if inner:
                    return f"{inner}, in a {{{name}}} directive"
    return html_problem("\n".join(html)) if html else None


def attachment(stem: str, key: str, bundle: dict) -> tuple[str, bytes]:
    """The file name (under the pages' ``figures/``) and the bytes of attachment ``key`` of notebook ``stem``.

    Raises ``Refused`` (without the cell: the caller adds it) for a type the site does not show, data that is not
    what its type says, or an SVG with script.
    """
    kinds = [m for m in IMAGE_TYPES if m in bundle]
    if not kinds:
        types = ", ".join(sorted(bundle)) or "empty"
        raise Refused(f"attachment {key!r} is {types}; the site shows PNG, JPEG, GIF and SVG attachments")
    mime = kinds[0]
    data = bundle[mime]
    data = "".join(data) if isinstance(data, list) else data
    suffixes, magics = IMAGE_TYPES[mime]
    if mime == "image/svg+xml" and data.lstrip().startswith("<"):
        content = data.encode("utf-8")
    else:
        try:
            content = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise Refused(f"attachment {key!r} ({mime}) is not base64 data") from None
    if magics and not content.startswith(magics):
        raise Refused(f"attachment {key!r} is not the {mime} it says it is")
    if mime == "image/svg+xml":
        problem = svg_problem(content)
        if problem:
            raise Refused(f"attachment {key!r} is {problem}")
    suffix = Path(key).suffix.lower()
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(key).stem if suffix else key) or "attachment"
    return f"{stem}-{base}{suffix if suffix in suffixes else suffixes[0]}", content


def attachment_link(source: str, key: str, target: str) -> str:
    """``source`` with its Markdown links to attachment ``key`` (as typed or percent-encoded) pointing at ``target``."""
    for spelt in dict.fromkeys((key, quote(key))):
        source = re.sub(r"\(attachment:" + re.escape(spelt) + r"(?=[)\s])", f"({target}", source)
    return source


def _cell_label(name: str, index: int, cell) -> str:
    return f"notebooks/{name}, cell {index + 1} ({cell.get('cell_type', '?')})"


def check_notebook(nb, name: str, extensions=("colon_fence",)) -> None:
    """Raise ``Refused`` (one line) at the first thing notebook ``name`` carries that could run script on the site.

    ``nb`` is the committed notebook, every cell of it; ``extensions`` are the site's ``myst_enable_extensions``.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.ipynb", name):
        raise Refused(f"notebooks/{name}: a notebook's name may hold only letters, digits, '.', '_' and '-'")
    md = _markdown_parser(extensions)
    stem = Path(name).stem
    for i, cell in enumerate(nb.cells):
        kind = cell.get("cell_type")
        problem = None
        if kind == "markdown":
            problem = _markdown_problem(cell.source, md)
        elif kind == "raw":
            fmt = str(cell.get("metadata", {}).get("format", "") or "")
            if fmt not in RAW_FORMATS:
                shown = ", ".join(sorted(RAW_FORMATS - {""}))
                problem = f"a raw cell of format {fmt} (a raw cell may be text: {shown})"
            elif fmt == "text/html":
                problem = html_problem(cell.source)
            elif fmt == "text/markdown":
                problem = _markdown_problem(cell.source, md)
        if not problem:
            files: dict[str, str] = {}
            for key, bundle in (cell.get("attachments") or {}).items():
                try:
                    file, _ = attachment(stem, key, bundle)
                except Refused as err:
                    problem = str(err)
                    break
                if file in files:
                    problem = f"attachments {files[file]!r} and {key!r} would both be figures/{file}"
                    break
                files[file] = key
        if problem:
            raise Refused(f"{_cell_label(name, i, cell)}: {problem} (what a notebook may carry onto the site: "
                          "docs/_ext/sanitise.py)")  # fmt: skip


def page_copy(nb, name: str, log=None):
    """``nb`` (a notebook page's copy, changed in place) without what code produced that could run script.

    JavaScript outputs and SVG outputs with script are dropped (another form of the output shows, if it has one);
    the notebook keeps only ``kernelspec`` and ``language_info`` of its metadata, each cell only ``tags``.
    ``log(message)`` is told of each output dropped.
    """
    for key in list(nb.metadata):
        if key not in ("kernelspec", "language_info"):
            del nb.metadata[key]
    for cell in nb.cells:
        for key in list(cell.get("metadata", {})):
            if key != "tags":
                del cell.metadata[key]
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data is not None:
                dropped = [m for m in data if _runs_script(m, data[m])]
                for mime in dropped:
                    del data[mime]
                    if log:
                        log(f"notebooks/{name}: its page leaves out a {mime} output (cell id {cell.get('id', '?')})")
                if not data:
                    continue
            kept.append(out)
        if "outputs" in cell:
            cell.outputs = kept
    return nb


def _runs_script(mime: str, value) -> bool:
    """Whether an output's ``mime`` form is script, or an SVG with script."""
    if "javascript" in mime or "ecmascript" in mime:
        return True
    text = "".join(value) if isinstance(value, list) else str(value)
    return mime == "image/svg+xml" and svg_problem(text) is not None


# ---- the extension: the backstop on the pages Sphinx writes from notebooks ----------------------------------------

NOTEBOOK_PAGES = "_notebooks/"
_ACTIVE_FILES = frozenset({".html", ".htm", ".xhtml", ".xht", ".shtml", ".xml", ".xsl", ".xslt", ".svg", ".svgz"})


def _notebook_doctree(app, doctree) -> None:
    """On a notebook's doctree, before its titles are collected: no raw HTML in a heading, no ``<meta>``, no SVG
    image with script and no download of a file a browser would run (an HTML, XML or SVG file)."""
    from docutils import nodes
    from sphinx import addnodes

    docname = app.env.docname
    if not docname.startswith(NOTEBOOK_PAGES):
        return
    for title in list(doctree.findall(nodes.title)):
        for raw in list(title.findall(nodes.raw)):
            raw.parent.remove(raw)
    for meta in list(doctree.findall(lambda n: n.__class__.__name__ == "meta")):
        meta.parent.remove(meta)
    where = f"{docname.removeprefix(NOTEBOOK_PAGES)}.ipynb"
    for image in doctree.findall(nodes.image):
        uri = image.get("uri", "")
        if uri.lower().endswith(".svg") and url_scheme(uri) is None:
            path = Path(app.env.relfn2path(uri, docname)[1])
            problem = svg_problem(path.read_bytes()) if path.is_file() else None
            if problem:
                fail(f"notebooks/{where} shows {path.name}, {problem}; the site shows nothing that could run script")
    for ref in doctree.findall(addnodes.download_reference):
        target = str(ref.get("reftarget", ""))
        if Path(target).suffix.lower() in _ACTIVE_FILES:
            fail(f"notebooks/{where} links {target} as a download; the site publishes no HTML, XML or SVG file "
                 "from a notebook")  # fmt: skip


def _clean_page(app, pagename, templatename, context, doctree) -> None:
    """Every notebook page's body through nh3 (``clean_html``): whatever the checks missed cannot run."""
    if pagename.startswith(NOTEBOOK_PAGES) and "body" in context:
        context["body"] = clean_html(context["body"])


def _safe_mathjax(app, config) -> None:
    """MathJax with its ``ui/safe`` extension (no ``\\href{javascript:…}``), unless the configuration sets MathJax."""
    if not config.mathjax4_config and not config.mathjax3_config:
        config.mathjax4_config = {"loader": {"load": ["ui/safe"]}}


def setup(app):
    app.connect("config-inited", _safe_mathjax)
    app.connect("doctree-read", _notebook_doctree, priority=100)  # before the title collector (priority 500)
    app.connect("html-page-context", _clean_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
