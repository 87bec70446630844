"""The words every layer shares: errors, name registries, sample references and statuses, file names as
text, and the tuning constants."""
