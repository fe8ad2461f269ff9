"""The fix kinds: each turns a diagnosis and the parsed cells into candidate rewrites (LibCST)."""
