"""Plain typed values shared by every layer: labels, series identity."""
