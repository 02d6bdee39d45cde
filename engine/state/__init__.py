"""What persists in a workspace: the SQLite store (the one place SQL runs), the workspace
folder, run folders, backups, checkpoint integrity and size limits."""
