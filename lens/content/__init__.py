"""Course content: the Lens format (see CONTENT-FORMAT.md), its parser and validator."""
