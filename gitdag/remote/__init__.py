"""Many machines: workers that take ready nodes from a shared git remote (spec §8)."""
