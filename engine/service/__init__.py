"""The front door for the UI: one call per thing a user does, one typed answer to draw or print.

The dashboard's pages and the CLI call these functions instead of stringing engine calls
together themselves, so a page only draws what it gets back and both say the same thing.
classify: a drawing, an upload or a batch of files, what the network saw and answered.
"""
