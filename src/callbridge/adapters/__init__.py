"""Adapters: implementations of the ports, chosen by name in the settings."""
