"""siptxn.py: what the torture senders (send_udp.py, send_stream.py) share."""

import re


def txn_key(payload):
    """The transaction a request belongs to (RFC 3261 §17.2.3): top Via
    branch and sent-by, and the method (ACK counts as its INVITE)."""
    head = payload.split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"(?im)^(via|v)[ \t]*:(.*)$", head)
    branch = re.search(rb"branch[ \t]*=[ \t]*([^;, \r\n]+)", m.group(2)) if m else None
    sent_by = re.sub(rb"\s+", b"", m.group(2).split(b";", 1)[0]).lower() if m else b""
    method = head.split(b" ", 1)[0]
    if method == b"ACK":
        method = b"INVITE"
    return (branch.group(1) if branch else None, sent_by, method)
