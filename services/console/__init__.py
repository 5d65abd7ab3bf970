"""console: the web page of Lindungi, a backend for frontend over the five services' HTTP APIs."""
