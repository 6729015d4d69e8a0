"""Configuration: structured schemas, the conf/ location, and validation."""
