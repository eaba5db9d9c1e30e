"""Grader checks, one module per part. Each check is a small function run inside the sandbox child."""
