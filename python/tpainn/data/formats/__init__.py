"""One module per file format; tpainn.data.readers picks the one a path needs."""
