"""``secdns serve``: an authoritative secondary (and primary for file zones) in the foreground."""
