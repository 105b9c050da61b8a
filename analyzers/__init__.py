"""Pure functions over captured exchanges: routes, layer model, backend fingerprint, evidence."""
