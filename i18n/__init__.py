"""The book's Simplified Chinese edition: message catalogues, the build, and the checks.

The English pages are the source. Sphinx's gettext builder extracts every translatable block
(paragraph, heading, list item, table cell, caption) as a message; ``book/locale/zh_CN`` holds one
``.po`` catalogue per page with the Chinese for each. The zh_CN edition is built from the same
pages and the same jupyter-cache records as the English one, so every executed output and glued
value is the English build's own: nothing runs twice.
"""
