"""Second factors, one module each, behind the protocol in ``base``."""
