"""From a decoded write request to rows in storage: series resolution and group commit."""
