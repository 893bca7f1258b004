"""Fitting and validating gpusizer's factors on published measurements (shell layer)."""
