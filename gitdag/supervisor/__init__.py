"""The supervisor: the only composer of core decisions, the store, runners and workspaces."""
