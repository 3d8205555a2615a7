"""Who someone is: Discord OAuth, e-mail links, bot codes, the session cookie, roles."""
