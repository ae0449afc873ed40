"""Front ends for other apps: the protocols they sign their users in with."""
