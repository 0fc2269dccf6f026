"""What every app's REST API shares: error rendering, pagination, schema helpers, parsers."""
