"""robocell.configs."""
