"""Domain suites of dqa; each subpackage registers its models on import."""
