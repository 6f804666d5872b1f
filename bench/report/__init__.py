"""Reports of recorded runs: charts (matplotlib), tables, a self-contained HTML page and Markdown."""
