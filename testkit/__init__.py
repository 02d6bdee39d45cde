"""Helpers shared by the tests and the benchmarks: the real MNIST files and workspaces built
from them, a dashboard for a headless browser, the processes of a workspace. Installed with the
project (pyproject), so both import it without path edits."""
