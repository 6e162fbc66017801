"""The `liaison` command: the composition root (CLI and demo) that wires every service together.
Nothing below it imports it."""
