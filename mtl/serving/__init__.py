"""Files `mtl export` copies, unchanged, next to an exported model: they run without mtl installed."""
