"""Course content: the Lens format (see docs/content-format.md), its parser and validator."""
