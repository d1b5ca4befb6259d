"""The only writer of the state branch: snapshots in, one commit per transition out."""
