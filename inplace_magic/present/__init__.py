"""Words and reports: the text report, static HTML, the words every face shows."""
