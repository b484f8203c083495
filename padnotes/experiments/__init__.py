"""Experiments, benchmarks, toys and figures of each chapter, apart from the methods (they import pandas and plotly; the methods do not)."""
