"""`yubin`: the lab's mail client (send over submission, fetch over POP3) and admin tool (users, domains)."""
