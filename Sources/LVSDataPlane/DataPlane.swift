// Data-plane backends.
