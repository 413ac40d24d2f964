"""Authentication and access control."""
