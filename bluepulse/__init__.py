"""bluepulse."""
