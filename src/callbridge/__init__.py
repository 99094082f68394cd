"""callbridge: a self-hosted contact-center call-control platform."""

__version__ = "0.1.0"
