"""Host-side evidence sources: runtime process execs and containerd events (Linux)."""
