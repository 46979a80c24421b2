"""The default configuration, shipped inside the package as `bot.defaults`: settings (tierdesk.toml), the
routing policy, the NLU training data and the FAQ answers. `tierdesk init DIR` writes an editable copy."""
