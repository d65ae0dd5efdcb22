"""Test helpers (corpus of bad files, fuzz targets, a synthetic clip): kept out of the installed package."""
