"""Input formats: YAML with line numbers, hostlists, topology files and the plan file."""
