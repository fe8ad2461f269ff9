"""Face: the anywidget panel's Python half: its state, its protocol and the fixes it may apply."""
