"""Metadata stores: workspaces, datasets, runs, models, stage history and lineage."""
