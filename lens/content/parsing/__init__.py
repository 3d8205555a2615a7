"""Reads a content repository (path -> text) into a ContentSet, collecting problems.

Every rule of the content format lives in this package, one module per file kind
(course, module, learning_outcome, lens, article, transcript) over a shared reader
(reader: problems, ids, fields, links; segments: Text, Chat and excerpts). loader picks
each file's kind by folder. A problem makes its file invalid; a module is served only
when it and every file it uses are valid.
"""

from lens.content.parsing.loader import FOLDERS, file_kind, load_content

__all__ = ["FOLDERS", "file_kind", "load_content"]
