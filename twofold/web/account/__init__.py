"""Account Settings: the Security page, the password, sessions and remembered browsers, /me,
and the "set up 2FA first" prompt of a practice that requires it."""
