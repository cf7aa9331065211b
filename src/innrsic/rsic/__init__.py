"""The .rsic container, file coding and the lazy window reader."""
