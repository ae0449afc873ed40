"""Twofold as an OpenID Connect provider: clients, codes, tokens, signing keys, and the provider
that puts them behind Authlib's protocol machinery."""
