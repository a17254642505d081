"""The soul: everything of a baby that persists."""
