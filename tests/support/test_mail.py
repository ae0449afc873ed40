"""The notifier delivers over real SMTP to the test server, with both parts."""

from twofold.core.notifier import Message


def test_notifier_delivers_text_and_html_over_smtp(notifier, mailbox):
    notifier.send(Message(to="dr.lee@riverside.example", subject="Hello", text="plain body", html="<p>html body</p>"))
    [received] = mailbox.wait_for(1, to="dr.lee@riverside.example")
    assert received.subject == "Hello"
    assert received.text.strip() == "plain body"
    assert "<p>html body</p>" in received.html
