"""`make bench`: figures and ratios measured on the real broker and database."""
