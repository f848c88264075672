"""Forecasting displacement cubes: windows, models, training, inference."""
