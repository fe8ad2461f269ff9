"""Face: the notebook. ``%%gradcheck``, the exception hook, cell names and display."""
