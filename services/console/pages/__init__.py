"""The console's pages, one module per family of users."""
