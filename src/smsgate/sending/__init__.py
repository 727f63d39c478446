"""The send path: resolve -> validate -> limit -> record -> dispatch -> record."""
