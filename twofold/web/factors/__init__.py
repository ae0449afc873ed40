"""Each second factor's set-up and removal, as pages and JSON side by side: one module per kind."""
