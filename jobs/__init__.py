"""The click entry points, one module per job."""
