"""Practice administration, pages and JSON side by side: members and their import, set-up links
(and the member's /setup/{token} pages), set-up on the admin's screen, resets, the policy and
the audit log.

Admin routes use ``PracticeAdmin``: a member who is not an admin gets 403, and every call
passes the admin's own practice, so another practice's member is "not found".
"""
