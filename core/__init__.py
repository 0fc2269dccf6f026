"""The bottom layer: plumbing every app shares (errors, API conventions, parsers, safe JSON,
middleware, egress, the tabular reader). Imports no Lethe app (import-linter checks it)."""
