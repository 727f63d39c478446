"""Console and admin API users."""
