"""The app's pages; each `render()` reads widgets and calls library functions."""
