"""Runners: packets, launching a runner process, collecting its result. Never the state branch."""
