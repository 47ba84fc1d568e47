"""Replies as HTML that is safe whatever the model or the shopper wrote.

Markdown is parsed with raw HTML disabled (a `<script>` in a reply is text); images
are dropped (no remote image can track a shopper) when the HTML is sanitized by an
allow-list (nh3, the Rust ammonia sanitizer) so that no `javascript:` link or stray
attribute survives whatever the parser lets through.
"""

from __future__ import annotations

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


def render_reply(text: str) -> Markup:
    """A reply's markdown as sanitized HTML."""
    html = _markdown.render(text)
    return Markup(  # noqa: S704 - the markup is nh3's sanitized output
        nh3.clean(
            html,
            tags=ALLOWED_TAGS,
            attributes=ALLOWED_ATTRIBUTES,
            url_schemes=ALLOWED_SCHEMES,
            link_rel="nofollow noopener",
        )
    )
