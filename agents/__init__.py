"""robocell.agents."""
