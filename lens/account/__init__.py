"""A person's own account: the account page, a download of their data, deletion."""
