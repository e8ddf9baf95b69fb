"""Artifact stores: content-addressed, immutable blobs (Parquet snapshots, model files, reports)."""
