"""MongoDB adapters of the web interface."""
