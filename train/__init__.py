"""robocell.train."""
