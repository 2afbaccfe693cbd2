"""The web interface (SPEC §11): server-rendered pages of the packages a visitor may read."""
