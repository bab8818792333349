"""The click CLI and the stage drivers that compose extract, model and data."""
