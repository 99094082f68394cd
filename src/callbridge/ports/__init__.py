"""Ports: the Protocols the service layer depends on. Adapters implement them."""
