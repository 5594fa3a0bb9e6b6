"""The `veriot` command. Each subcommand group lives in its own module with a `register`."""
