"""robocell.eval."""
