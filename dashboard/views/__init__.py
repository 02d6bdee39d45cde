"""The pages' views: each module has render()."""
