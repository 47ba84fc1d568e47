"""Replies as HTML that is safe whatever the model or the shopper wrote.

Markdown is parsed with raw HTML disabled (a `<script>` in a reply is text); images
are dropped (no remote image can track a shopper) when the HTML is sanitized by an
allow-list (nh3, the Rust ammonia sanitizer) so that no `javascript:` link or stray
attribute survives whatever the parser lets through.

Links are the shop's own pages, and this is where that is enforced: the guard strips
the links the model writes for tidy text, but only the markdown parser knows every
link it makes (split across sentences, nested brackets, parentheses in the address,
reference definitions). So, on the final HTML, a link keeps its address only if it is
a path on this site; any other keeps its text and loses its href.
"""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_markdown.disable(["html_block", "html_inline"])

ALLOWED_TAGS = {
    "p",
    "br",
    "em",
    "strong",
    "ul",
    "ol",
    "li",
    "code",
    "pre",
    "blockquote",
    "a",
    "h3",
    "h4",
    "hr",
}
ALLOWED_ATTRIBUTES = {"a": {"href"}}
# Links in a reply are the shop's own product pages (see guard): relative URLs.
ALLOWED_SCHEMES = {"http", "https"}
# A path on this site: "/..." but not "//host" nor "/\\host" (browsers read a backslash
# as a slash), and no whitespace or control character (browsers drop tabs and line
# breaks from a URL, so "/\t/host" is "//host").
_SAME_SITE_PATH = re.compile(r"/(?![/\\])[^\\\s\x00-\x1f\x7f]*\Z")


def same_site_path(url: str) -> bool:
    return _SAME_SITE_PATH.match(url) is not None


def _links_to_this_site(tag: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter (it sees the decoded value, as a browser does)."""
    if attribute == "href" and not same_site_path(value):
        return None
    return value


def render_reply(text: str) -> Markup:
    """A reply's markdown as sanitized HTML."""
    html = _markdown.render(text)
    # Markup of nh3's sanitized output (noqa S704, nosec B704): never of raw text.
    return Markup(  # noqa: S704  # nosec B704
        nh3.clean(
            html,
            tags=ALLOWED_TAGS,
            attributes=ALLOWED_ATTRIBUTES,
            url_schemes=ALLOWED_SCHEMES,
            attribute_filter=_links_to_this_site,
            link_rel="nofollow noopener",
        )
    )
